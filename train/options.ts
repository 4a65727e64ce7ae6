/**
 * Option groups the training commands share, declared once: a command's option type extends
 * these instead of repeating the fields (the output group is data/output/options.ts).
 * @module
 */
export type { OutputOptions } from "../data/output/mod.ts";
import type { ResolvedSquadSettings } from "./squad_settings.ts";

/** Which rows of a task to read and how to cut them (tokenization settings included). */
export interface RowSourceOptions {
  /** Root of the GLUE distribution layout (`D/SST-2/dev.tsv`, `D/squad/dev-v2.0.json`). */
  dataDir?: string;
  /** The split's first `limit` examples. */
  limit?: number;
  /** Tokens per row; default: the task's head kind's (128 for GLUE, 384 for SQuAD). */
  maxSeqLength?: number;
  /**
   * SQuAD: overlap in tokens between consecutive windows (`--doc-stride`; default 128, halved
   * where it leaves no room to advance; see train/rows.ts). Other tasks refuse it.
   */
  docStride?: number;
  /** Parallel tokenization workers (the seed's `--num-workers`); 0 or 1 = this thread. */
  numWorkers?: number;
  /**
   * SQuAD: question length and answer rule, resolved once by the command
   * (train/squad_settings.ts `resolveSquadSettings`); absent: the seed's with `preset`, else the
   * library's (run_squad.py's). Other tasks refuse values given.
   */
  squad?: ResolvedSquadSettings;
}

/** How the device is sized (the planner's limit). */
export interface DeviceOptions {
  /**
   * A lower limit in MiB for the tensors the planner splits (else `BERTVISION_MAX_BINDING_MIB`,
   * else the device's): tests and users sharing a GPU.
   */
  maxBindingMiB?: number;
}
