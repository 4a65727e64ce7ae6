/**
 * The seed's own activation stores (BERTVision's `code/torch/gen_embeds/*_embeds.py` @ dfdafad,
 * read by its `data/h5_processors/*_H5_processor.py`), read as one store
 * ({@linkcode SeedStoreReader}, a {@linkcode StoreReader}): three HDF5 files per GLUE split,
 *
 * - `PREFIX_bert_embeds.h5`, dataset `embeds`: float32 [N, L+1, T, F] (`torch.stack(
 *   out['hidden_states']).float()` permuted to batch first; chunks of `--embed-batch-size` rows);
 * - `PREFIX_labels.h5`, dataset `labels`: int64 [N] (STS-B: float32 [N]);
 * - `PREFIX_idx.h5`, dataset `idx`: int64 [N], the example's row in its file;
 *
 * each dataset with the attribute `last_index` = (batches written) × `--embed-batch-size`,
 * updated after every batch. PREFIX is the task's (`sst`, `msr`, `rte`, `qnli`, `qqpairs`,
 * `stsb`, `cola`, `mnli`) for the training split, with `_dev` for dev (`mnli_dev_matched`,
 * `mnli_dev_mismatched`). A store is named by its embeds file; the other two are read beside it.
 * The three must agree: N rows each, one label and one index per row, and a `last_index` (where
 * written) of at least N in each, else the store is refused naming the files (a gen_embeds run
 * that stopped early leaves `last_index` < N). The seed stored no token ids: `readInputIds`
 * refuses (a `--dev-file` check needs a store from `deno task capture`), and rows read give
 * zeros for them (the heads do not use them). SQuAD's four shuffled files are not read here.
 *
 * Checked by data/h5/seed_store_test.ts (the seed's layout written with h5wasm, read back, a
 * head trained from it, and each mismatch refused).
 * @module
 */
import { InputError, preview } from "../errors.ts";
import { assertHdf5, type H5Dataset, h5Do, type H5File, h5lib, h5Ready, openH5 } from "./hdf5.ts";
import { type H5ReadRows, type H5Rows, readIndicesBy } from "./rows.ts";
import type { StoreReader } from "./reader.ts";

/** The seed's file prefix of each task (its gen_embeds scripts' names) and our task. */
export const SEED_STORE_TASKS: Readonly<Record<string, string>> = {
  sst: "sst2",
  msr: "mrpc",
  rte: "rte",
  qnli: "qnli",
  qqpairs: "qqp",
  stsb: "stsb",
  cola: "cola",
  mnli: "mnli",
};

const EMBEDS_SUFFIX = "_bert_embeds.h5";

/** Whether `path` is named as the seed's embeds file (`PREFIX_bert_embeds.h5`). */
export function isSeedStoreName(path: string): boolean {
  return path.endsWith(EMBEDS_SUFFIX);
}

/**
 * The seed's three files of a store named by its embeds file, and the task and split its name
 * says (`sst_dev_bert_embeds.h5` → sst2, dev; MRPC's dev is the MSR test file, `msr_test`).
 */
export function seedStoreFiles(embedsPath: string): {
  embeds: string;
  labels: string;
  idx: string;
  task?: string;
  split: string;
} {
  const base = embedsPath.slice(0, -EMBEDS_SUFFIX.length);
  const name = base.slice(base.lastIndexOf("/") + 1);
  const m = /^([a-z]+?)(_dev(?:_matched|_mismatched)?)?$/.exec(name);
  const task = m ? SEED_STORE_TASKS[m[1]] : undefined;
  const dev = m?.[2];
  const split = !dev
    ? "train"
    : dev === "_dev"
    ? (task === "mrpc" ? "msr_test" : "dev")
    : dev.slice(1);
  return {
    embeds: embedsPath,
    labels: `${base}_labels.h5`,
    idx: `${base}_idx.h5`,
    task,
    split,
  };
}

/** One of the three files, open, with its one dataset's layout. */
interface Part {
  path: string;
  file: H5File;
  ds: H5Dataset;
  dtype: string;
  shape: number[];
  lastIndex?: number;
}

/** Reads the seed's three-file store of one split as one {@linkcode StoreReader}. */
export class SeedStoreReader implements StoreReader {
  readonly path: string;
  readonly shape: StoreReader["shape"];
  readonly dtype = "f32" as const;
  readonly attrs: Record<string, string | number>;
  readonly rowsComplete: number;
  readonly complete = true;
  /** The seed stored no token ids (see {@linkcode SeedStoreReader.readInputIds}). */
  readonly hasInputIds = false;
  readonly fingerprint = undefined;
  readonly foreign = true;
  readonly chunkRows?: number;
  readonly labelWidth = 1;
  #embeds: Part;
  #labels: Part;
  #idx: Part;

  private constructor(path: string, parts: Part[], task: string | undefined, split: string) {
    this.path = path;
    [this.#embeds, this.#labels, this.#idx] = parts;
    const [e, l, x] = parts;
    const bad = (file: string, what: string): never => {
      throw new InputError(`${file}: ${what}; not the seed's gen_embeds layout`, { file });
    };
    if (e.dtype !== "<f" || e.shape.length !== 4) {
      bad(
        e.path,
        `dataset "embeds" is ${preview(e.dtype)} [${e.shape}], not float32 [N, L+1, T, F]`,
      );
    }
    const n = e.shape[0];
    if (
      !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0) ||
      e.shape.slice(1).some((d) => d === 0) || e.shape.slice(1).reduce((a, b) => a * b, 1) > 2 ** 30
    ) {
      bad(e.path, `dataset "embeds" has shape [${e.shape}]`);
    }
    if (l.dtype !== "<q" && l.dtype !== "<f") {
      bad(l.path, `dataset "labels" is ${preview(l.dtype)}, not int64 or float32`);
    }
    if (x.dtype !== "<q") bad(x.path, `dataset "idx" is ${preview(x.dtype)}, not int64`);
    for (const [p, what] of [[l, "labels"], [x, "idx"]] as const) {
      if (p.shape.length !== 1 || p.shape[0] !== n) {
        throw new InputError(
          `${p.path}: dataset "${what}" has shape [${p.shape}] but ${e.path} holds ${n} rows ` +
            `([${e.shape}]): the three files of a seed store must have one ${
              what === "labels" ? "label" : "index"
            } per row; are they of the same split and run?`,
          { file: p.path },
        );
      }
    }
    for (const p of parts) {
      const li = p.lastIndex;
      if (li !== undefined && (!Number.isSafeInteger(li) || li < 0)) {
        bad(p.path, `attribute last_index is ${preview(li)}`);
      }
      if (li !== undefined && li < n) {
        throw new InputError(
          `${p.path}: incomplete: its last_index says ${li} of ${n} rows were written (a ` +
            `gen_embeds run that stopped early); run it again to the end`,
          { file: p.path },
        );
      }
    }
    this.shape = {
      n,
      layers: e.shape[1],
      tokens: e.shape[2],
      hidden: e.shape[3],
      layout: "full",
    };
    this.rowsComplete = n;
    const chunks = h5Do(
      e.path,
      `read the layout of "embeds"`,
      () => (e.ds.metadata as { chunks?: number[] | null }).chunks,
    );
    if (chunks && Number.isSafeInteger(chunks[0]) && chunks[0] > 0) this.chunkRows = chunks[0];
    this.attrs = {
      source: "the seed's gen_embeds (three files)",
      ...(task ? { task } : {}),
      split,
      layout: "full",
      dtype: "f32",
      max_seq_length: e.shape[2],
      label_type: l.dtype === "<q" ? "int64" : "float32",
      labels_file: l.path,
      idx_file: x.path,
    };
  }

  /**
   * Opens the store whose embeds file is `embedsPath` (`PREFIX_bert_embeds.h5`, with
   * `PREFIX_labels.h5` and `PREFIX_idx.h5` beside it); errors name the file at fault.
   */
  static async open(embedsPath: string): Promise<SeedStoreReader> {
    const f = seedStoreFiles(embedsPath);
    for (const p of [f.embeds, f.labels, f.idx]) {
      await assertHdf5(p).catch((e) => {
        if (p !== f.embeds && e instanceof InputError && /no such file/.test(e.message)) {
          throw new InputError(
            `${p}: no such file; the seed's store ${f.embeds} is read with its labels and idx ` +
              `files beside it (${f.labels}, ${f.idx}), as its gen_embeds scripts write them`,
            { file: p },
          );
        }
        throw e;
      });
    }
    await h5Ready();
    const parts: Part[] = [];
    try {
      for (const [p, name] of [[f.embeds, "embeds"], [f.labels, "labels"], [f.idx, "idx"]]) {
        const file = openH5(p, "r");
        parts.push({ path: p, file } as Part);
        const ds = h5Do(p, `open dataset "${name}"`, () => file.get(name));
        if (!(ds instanceof h5lib().Dataset)) {
          throw new InputError(
            `${p}: no dataset "${name}"; the seed's gen_embeds writes "${name}" in this file`,
            { file: p },
          );
        }
        const d = ds as H5Dataset;
        const meta = h5Do(p, `read the layout of "${name}"`, () => ({
          dtype: d.dtype as string,
          shape: d.shape ?? [],
          last: d.attrs["last_index"]?.value,
        }));
        Object.assign(parts[parts.length - 1], {
          ds: d,
          dtype: meta.dtype,
          shape: meta.shape,
          lastIndex: meta.last === undefined
            ? undefined
            : typeof meta.last === "bigint"
            ? Number(meta.last)
            : meta.last as number,
        });
      }
      return new SeedStoreReader(f.embeds, parts, f.task, f.split);
    } catch (e) {
      for (const p of parts) {
        try {
          p.file.close();
        } catch { /* the error at hand says more */ }
      }
      throw e;
    }
  }

  #check(method: string, start: number, count: number): void {
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count <= 0) {
      throw new Error(
        `${this.path}: ${method}(${start}, ${count}) needs integers start ≥ 0, count > 0`,
      );
    }
    if (start + count > this.shape.n) {
      throw new InputError(
        `${this.path}: rows ${start}..${start + count} requested but it holds ${this.shape.n}`,
      );
    }
  }

  /** Reads rows [start, start + count): hidden states, labels and indices (token ids zero). */
  readRows(start: number, count: number): H5ReadRows {
    this.#check("readRows", start, count);
    const r: [number, number][] = [[start, start + count]];
    const read = (p: Part, name: string) =>
      h5Do(p.path, `read rows ${start}..${start + count} of "${name}"`, () => p.ds.slice(r));
    const labels = read(this.#labels, "labels") as BigInt64Array | Float32Array;
    const idx = read(this.#idx, "idx") as BigInt64Array;
    const T = this.shape.tokens;
    return {
      embeds: read(this.#embeds, "embeds") as Float32Array,
      inputIds: new Int32Array(count * T),
      tokenTypeIds: new Int32Array(count * T),
      attentionMask: new Int32Array(count * T),
      labels: labels instanceof BigInt64Array ? Int32Array.from(labels, (v) => Number(v)) : labels,
      idx: Float64Array.from(idx, (v) => Number(v)),
    };
  }

  /** Not available: the seed stored no token ids, so its rows cannot be copied to a store. */
  readRowsRaw(_start: number, _count: number): H5Rows {
    throw this.#noTokens("copy its rows into a store");
  }

  /** Not available: the seed stored no token ids to compare a `--dev-file` with. */
  readInputIds(_start?: number, _count?: number): Int32Array {
    throw this.#noTokens("check it against --dev-file");
  }

  #noTokens(what: string): InputError {
    return new InputError(
      `${this.path}: the seed's gen_embeds stores hold no input_ids, so nothing can ${what}; ` +
        `use a store from deno task capture`,
      { file: this.path },
    );
  }

  /** Reads arbitrary rows in the order given, one hyperslab per run of consecutive indices. */
  readIndices(indices: ArrayLike<number>): H5ReadRows {
    return readIndicesBy(this, indices);
  }

  /** Closes the three files. */
  close(): void {
    for (const p of [this.#embeds, this.#labels, this.#idx]) {
      h5Do(p.path, "close it", () => p.file.close());
    }
  }
}
