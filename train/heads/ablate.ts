/**
 * Layer ablation of a trained BERTVision head (AP, LP, AvgP): its dev metric with each stored
 * layer's activations replaced by that layer's training mean (per token and feature), one
 * evaluation pass per layer, nothing trained. A layer the head relies on costs much when ablated;
 * one it ignores costs nothing. LP heads also report their learned layer weights
 * (softmax of `pooling.layer_logits`, and `pooling.scale`).
 *
 * The means: the head's own `layer_means.safetensors` (train/heads/run.ts `LAYER_MEANS_FILE`,
 * written when it trained), else, for heads trained before that, the training store given
 * (`trainH5`, read once). Writes `ablate.json` (written last: the completion marker, with the
 * settings a rerun compares), `ablate.md` and `ablate.svg` (LP: `ablate_weights.svg`) to `outDir`
 * (default the head's directory), under its lock; a rerun with the same head, dev store and means
 * finds it finished, other inputs are refused unless `overwrite`.
 * @module
 */
import { loadHead } from "../../model/heads.ts";
import { readSafetensors } from "../../model/safetensors.ts";
import { initGpu, Tensor } from "../../model/tensor.ts";
import {
  acquireLock,
  readMarker,
  settingsDiff,
  settingsMismatch,
  writeMarker,
} from "../../data/output/mod.ts";
import { InputError } from "../../data/errors.ts";
import type { H5ReadRows } from "../../data/h5_store.ts";
import {
  type Ablation,
  ablationChart,
  ablationMarkdown,
  layerSvg,
  weightsChart,
} from "../../report/layers.ts";
import { writeTextAtomic } from "../../data/output/mod.ts";
import { devMetricKeys, mergeDevMetrics, resolveTask, type Task } from "../../tasks/mod.ts";
import type { RowTensor } from "../plan.ts";
import {
  type ActivationSource,
  type RowsIdentity,
  type SourceRows,
  type SourceShape,
  StoreSource,
} from "../sources.ts";
import { checkSameCapture, checkStore } from "./checks.ts";
import { evaluateHead } from "./evaluate.ts";
import { plottedKeys } from "./fractions.ts";
import { LAYER_MEANS_FILE } from "./run.ts";

/** Options of {@linkcode ablateHead}. */
export interface AblateOptions {
  /** The trained head's directory (`head.safetensors`, `results.json`). */
  head: string;
  task: string | Task;
  /** The dev store(s) to evaluate on (one per dev split). */
  devH5: string | string[];
  /** The training store, for heads without saved layer means. */
  trainH5?: string;
  /** Where `ablate.*` go [the head's directory]. */
  outDir?: string;
  /** Rows per evaluation forward [64]. */
  evalBatchSize?: number;
  overwrite?: boolean;
  breakLock?: boolean;
  silent?: boolean;
}

/** Dev rows held in memory up to this many bytes (read once, evaluated L+2 times). */
const CACHE_BYTES = 512 * 2 ** 20;

/** A dev store's rows with one layer replaced by a fixed vector per row (or none). */
class AblatedSource implements ActivationSource {
  readonly name: string;
  readonly fingerprint: string;
  readonly shape: SourceShape;
  readonly inner: StoreSource;
  /** The layer replaced (-1: none) and the per-layer means [L, rest]. */
  layer = -1;
  readonly means: Float32Array;
  #cache: H5ReadRows | null = null;

  constructor(inner: StoreSource, means: Float32Array) {
    this.inner = inner;
    this.name = inner.name;
    this.fingerprint = inner.fingerprint;
    this.shape = { ...inner.shape };
    this.means = means;
    const s = this.shape;
    const row = s.layers * (s.layout === "full" ? s.tokens : 1) * s.hidden;
    if (row * 4 * s.n <= CACHE_BYTES) this.#cache = inner.reader.readRows(0, s.n);
  }

  get labelWidth(): number {
    return this.inner.labelWidth;
  }

  /** The inner store's rows, in the same order (the wrapper changes activations only). */
  rowsIdentity(): RowsIdentity {
    return this.inner.rowsIdentity();
  }

  range(start: number, count: number): SourceRows {
    const s = this.shape;
    const row = s.layers * (s.layout === "full" ? s.tokens : 1) * s.hidden;
    const per = row / s.layers, lw = this.labelWidth;
    // Cached: the rows at `start`; else read now (offset 0).
    const d = this.#cache ?? this.inner.reader.readRows(start, count);
    const at = this.#cache ? start : 0;
    const embeds = d.embeds.slice(at * row, (at + count) * row);
    if (this.layer >= 0) {
      const m = this.means.subarray(this.layer * per, (this.layer + 1) * per);
      for (let i = 0; i < count; i++) embeds.set(m, i * row + this.layer * per);
    }
    const shape = s.layout === "full"
      ? [count, s.layers, s.tokens, s.hidden]
      : [count, s.layers, s.hidden];
    return {
      x: Tensor.from(embeds, shape, { name: "x" }),
      labels: d.labels.subarray(at * lw, (at + count) * lw),
      idx: d.idx.subarray(at, at + count),
    };
  }

  take(rows: ArrayLike<number>): SourceRows {
    throw new Error(`ablation reads dev rows in order only (asked for ${rows.length} rows)`);
  }

  rowTensors(): RowTensor[] {
    return this.inner.rowTensors();
  }

  peakBytes(rows: number): number {
    return this.inner.peakBytes(rows);
  }

  close(): void {
    this.inner.close();
  }
}

/** The per-layer means of a training store's rows [L, rest] (read once, in blocks). */
async function storeMeans(path: string, task: Task): Promise<Float32Array> {
  const src = await StoreSource.open(path);
  try {
    checkStore(src.reader, { task, role: "train" });
    const s = src.shape;
    const row = s.layers * (s.layout === "full" ? s.tokens : 1) * s.hidden;
    const acc = new Float64Array(row);
    for (let start = 0; start < s.n; start += 256) {
      const c = Math.min(256, s.n - start);
      const e = src.reader.readRows(start, c).embeds;
      for (let i = 0; i < c; i++) for (let j = 0; j < row; j++) acc[j] += e[i * row + j];
    }
    return Float32Array.from(acc, (v) => v / s.n);
  } finally {
    src.close();
  }
}

/**
 * The dev metric of the head in `head` with each stored layer replaced by its training mean;
 * writes `ablate.{json,md,svg}`.
 *
 * @example
 * ```ts ignore
 * const a = await ablateHead({ head: "runs/sst2-ap", task: "sst2", devH5: "dev.h5" });
 * console.log(a.full.accuracy, a.points.map((p) => p.metrics.accuracy));
 * ```
 */
export async function ablateHead(o: AblateOptions): Promise<Ablation & { files: string[] }> {
  await initGpu();
  const task = resolveTask(o.task);
  const dir = o.head.replace(/\/+$/, "");
  const out = o.outDir ?? dir;
  const record = await readMarker<Record<string, unknown>>(dir, "results.json").catch(() => null);
  if (!record) {
    throw new InputError(
      `--head ${dir}: no finished head there (results.json, head.safetensors); give the --out ` +
        `directory of a trained AP/LP/AvgP head`,
      { file: `${dir}/results.json` },
    );
  }
  if (record.task !== undefined && record.task !== task.name) {
    throw new InputError(
      `--head ${dir} was trained on ${record.task}, not --task ${task.name}`,
      { file: `${dir}/results.json` },
    );
  }
  const meansPath = `${dir}/${LAYER_MEANS_FILE}`;
  const saved = await Deno.stat(meansPath).then(() => true, () => false);
  if (!saved && !o.trainH5) {
    throw new InputError(
      `--head ${dir} has no ${LAYER_MEANS_FILE} (trained before heads saved their layer means): ` +
        `give its training store with --h5 TRAIN.h5`,
      { file: meansPath },
    );
  }
  const devPaths = [o.devH5].flat();
  await Deno.mkdir(out, { recursive: true });
  const lock = acquireLock(out, "dir", { breakLock: o.breakLock });
  const head = await loadHead(`${dir}/head.safetensors`);
  const devs: AblatedSource[] = [];
  try {
    const means = saved
      ? (await readSafetensors(meansPath)).tensors.get("layer_means")?.data
      : await storeMeans(o.trainH5!, task);
    if (!(means instanceof Float32Array)) {
      throw new InputError(
        `${meansPath}: no float tensor "layer_means"; rerun with --h5 TRAIN.h5`,
        {
          file: meansPath,
        },
      );
    }
    const settings = {
      head: record.settings ?? null,
      headFile: `${dir}/head.safetensors`,
      dev: [] as string[],
      means: saved ? meansPath : o.trainH5,
    };
    for (const p of devPaths) {
      const src = await StoreSource.open(p);
      try {
        checkStore(src.reader, { task, role: "dev" });
        const s = src.shape, c = head.config;
        const perLayer = (s.layout === "full" ? s.tokens : 1) * s.hidden;
        if (s.layers !== c.layers || means.length !== s.layers * perLayer) {
          throw new InputError(
            `${p} holds ${s.layers} layers × ${perLayer} values but the head was built for ` +
              `${c.layers} layers and the means hold ${means.length} values: give the dev store ` +
              `captured with the head's training store`,
            { file: p },
          );
        }
        if (o.trainH5 && !saved) {
          const t = await StoreSource.open(o.trainH5);
          try {
            checkSameCapture(t.reader, src.reader);
          } finally {
            t.close();
          }
        }
      } catch (e) {
        src.close();
        throw e;
      }
      settings.dev.push(src.fingerprint);
      devs.push(new AblatedSource(src, means));
    }
    const found = await readMarker<Ablation & { settings?: Record<string, unknown> }>(
      out,
      "ablate.json",
    ).catch((e) => {
      if (o.overwrite) return null;
      throw e;
    });
    if (found) {
      const diff = settingsDiff(found.settings ?? {}, settings);
      if (!diff.length) {
        return { ...found, files: ["json", "md", "svg"].map((x) => `${out}/ablate.${x}`) };
      }
      if (!o.overwrite) {
        throw settingsMismatch(
          `${out}/ablate.json`,
          diff,
          "choose another --out, or --overwrite to replace it",
        );
      }
    }
    const splitName = (d: AblatedSource, i: number) =>
      typeof d.inner.reader.attrs.split === "string"
        ? d.inner.reader.attrs.split
        : devPaths[i].slice(devPaths[i].lastIndexOf("/") + 1).replace(/\.h5$/, "");
    const evaluate = async (layer: number) => {
      const bySplit: [string, Record<string, number>][] = [];
      for (const [i, d] of devs.entries()) {
        d.layer = layer;
        const ev = await evaluateHead(head, d, task, {
          batchSize: o.evalBatchSize,
          silent: true,
        });
        bySplit.push([splitName(d, i), ev.metrics]);
      }
      return mergeDevMetrics(task, bySplit);
    };
    const full = await evaluate(-1);
    const points = [];
    for (let l = 0; l < head.config.layers; l++) {
      points.push({ layer: l, metrics: await evaluate(l) });
      if (!o.silent) console.error(`ablate: layer ${l} of ${head.config.layers} done`);
    }
    const splits = devs.map(splitName);
    const a: Ablation & { settings: typeof settings } = {
      task: task.name,
      head: dir,
      pooling: head.config.pooling,
      means: saved ? meansPath : `${o.trainH5} (read now)`,
      metricKeys: devMetricKeys(task, splits),
      plotted: plottedKeys(task, splits),
      full,
      points,
      finished: new Date().toISOString(),
      settings,
    };
    if (head.config.pooling === "lp") {
      const w = await head.toHost();
      const logits = w.get("pooling.layer_logits")!.data;
      const mx = Math.max(...logits);
      const e = Array.from(logits, (v) => Math.exp(v - mx));
      const z = e.reduce((x, y) => x + y, 0);
      a.layerWeights = e.map((v) => v / z);
      a.scale = w.get("pooling.scale")!.data[0];
    }
    const files = [`${out}/ablate.md`, `${out}/ablate.svg`];
    await writeTextAtomic(files[0], ablationMarkdown(a));
    await writeTextAtomic(files[1], layerSvg(ablationChart(a)));
    const wc = weightsChart(a);
    if (wc) {
      files.push(`${out}/ablate_weights.svg`);
      await writeTextAtomic(files[2], layerSvg(wc));
    }
    // Last: the completion marker, with the settings a rerun compares.
    await writeMarker(out, a, "ablate.json");
    return { ...a, files: [`${out}/ablate.json`, ...files] };
  } finally {
    head.dispose();
    for (const d of devs) d.close();
    lock.release();
  }
}
