/**
 * Opening a head run's sources: the training and dev stores (checked against the task, the flags
 * and each other, with a dev file's rows recomputed), or the streams of a BERT checkpoint over
 * the splits; each dev source with the prefix of its files.
 * @module
 */
import { BertModel } from "../../model/bert.ts";
import { loadBertCheckpoint, resolveModel } from "../../model/checkpoint.ts";
import { loadTokenizer } from "../../data/tokenize.ts";
import { InputError } from "../../data/errors.ts";
import { type EvalRows, kindOf, pickDevSplits, type Task } from "../../tasks/mod.ts";
import { loadRows, rowNotes, rowsOfStore, type SplitRows } from "../rows.ts";
import { squadRowsFor } from "../squad_settings.ts";
import { type ActivationSource, StoreSource, StreamSource } from "../sources.ts";
import { checkSameCapture, checkStore } from "./checks.ts";
import type { TrainApOptions } from "./options.ts";
import { presetFor, seedSeqLength } from "../presets.ts";

/** A dev source of a head: the split it holds and the prefix of its files in `outDir`. */
export interface DevSource {
  split: string;
  prefix: string;
  source: ActivationSource;
  /** The rows to score it with (stream mode; in store mode `devRows` for the first). */
  rows?: EvalRows;
}

/** The dev sources' prefixes: `dev` for one, else each split's name (made unique). */
function prefixed(devs: Omit<DevSource, "prefix">[]): DevSource[] {
  return devs.map((d, i) => ({
    ...d,
    prefix: devs.length === 1
      ? "dev"
      : devs.findIndex((e) => e.split === d.split) === i
      ? d.split
      : `${d.split}_${i}`,
  }));
}

/** The training and dev sources of a run, checked against the task and the flags. */
export async function openSources(
  task: Task,
  o: TrainApOptions,
): Promise<{
  train: ActivationSource;
  dev: ActivationSource | null;
  devRows?: EvalRows;
  devs: DevSource[];
  /** What the plan says about the rows (SQuAD's windows). */
  notes?: string[];
}> {
  const devH5s = o.devH5 === undefined ? [] : [o.devH5].flat();
  if (o.stream) {
    if (o.trainH5 || devH5s.length) {
      throw new Error(`give stored activations (--h5, --dev-h5) or a stream (--bert), not both`);
    }
    const kind = kindOf(task);
    const s = o.stream;
    const dir = await resolveModel(s.model, { silent: o.silent });
    const ck = await loadBertCheckpoint(dir);
    // Given, else with the preset the seed's head length (its `n_tokens`), else the default.
    const maxSeqLength = s.maxSeqLength ??
      (o.preset ? seedSeqLength(task.name, "ap")?.value : undefined) ?? kind.defaultMaxSeqLength;
    const layout = s.layout ?? o.layout ?? "full";
    if (kind.readout === "token" && layout !== "full") {
      throw new Error(`${kind.name} task ${task.name} needs every token: --layout full`);
    }
    const tokenizer = s.rows ? undefined : await loadTokenizer(dir);
    const workers = { modelDir: dir, count: s.numWorkers ?? 0 };
    const rows = (split: string, file: string | undefined, limit: number | undefined) => {
      const what = {
        split,
        dataDir: s.dataDir,
        dataFile: file,
        maxSeqLength,
        limit,
        training: split === "train" || split === seedData?.trainSplit?.value,
        docStride: s.docStride,
        ...squadRowsFor(task, s.squad ?? o.squad, !!o.preset),
      };
      return s.rows
        ? s.rows.load(task, dir, { ...what, numWorkers: s.numWorkers })
        : loadRows(task, { ...what, tokenizer: tokenizer!, workers });
    };
    // With the preset, the seed's data where it differs from the task's default (MRPC: the MSR
    // training and test files).
    const seedData = o.preset ? presetFor(task.name) : undefined;
    const trainRows = seedData?.trainSplit && s.trainFile === undefined
      ? await rows(seedData.trainSplit.value, undefined, s.limit)
      : await rows("train", s.trainFile, s.limit);
    const devSplits = o.noDev ? [] : pickDevSplits(task, {
      only: s.devFile !== undefined ? task.devSplits[0] : undefined,
      asked: s.devSplits,
      seed: seedData?.devSplits?.value,
    });
    const devRowsList: SplitRows[] = [];
    for (const split of devSplits) devRowsList.push(await rows(split, s.devFile, s.devLimit));
    const model = BertModel.fromHost(ck.config, ck.weights);
    const src = { layout, modelName: ck.modelId, weightsHash: ck.weightsHash };
    const devs = prefixed(devRowsList.map((r) => ({
      split: r.split,
      source: new StreamSource(model, r, kind, src),
      rows: r,
    })));
    return {
      train: new StreamSource(model, trainRows, kind, { ...src, ownsModel: true }),
      dev: devs[0]?.source ?? null,
      devRows: devRowsList[0],
      devs,
      notes: rowNotes(trainRows),
    };
  }
  if (!o.trainH5) throw new Error(`no training activations: give --h5 (or --bert for a stream)`);
  const train = await StoreSource.open(o.trainH5);
  const opened: StoreSource[] = [];
  let fileRows: EvalRows | undefined;
  try {
    checkStore(train.reader, { task, layout: o.layout, modelId: o.modelId, role: "train" });
    for (const path of devH5s) {
      const dev = await StoreSource.open(path);
      opened.push(dev);
      checkStore(dev.reader, { task, layout: o.layout, modelId: o.modelId, role: "dev" });
      checkSameCapture(train.reader, dev.reader);
    }
    // --dev-file: the dev store's rows recomputed from its file (SQuAD: answers, EM/F1).
    if (o.devFile !== undefined && !o.devRows) {
      if (!opened.length) {
        throw new InputError(`--dev-file ${o.devFile} is the file of a dev store: give --dev-h5`);
      }
      fileRows = await rowsOfStore(task, opened[0].reader, {
        dataFile: o.devFile,
        model: o.devModel,
        answerRule: squadRowsFor(task, o.squad, !!o.preset).answerRule,
      });
    }
  } catch (e) {
    train.close();
    for (const d of opened) d.close();
    throw e;
  }
  const devs = prefixed(opened.map((d, i) => ({
    split: typeof d.reader.attrs.split === "string"
      ? d.reader.attrs.split
      : devH5s[i].slice(devH5s[i].lastIndexOf("/") + 1).replace(/\.h5$/, ""),
    source: d,
    rows: i === 0 ? o.devRows ?? fileRows : undefined,
  })));
  return { train, dev: devs[0]?.source ?? null, devRows: o.devRows ?? fileRows, devs };
}
