/**
 * The checks a head's stores pass before anything trains: a store against the flags (layout,
 * task, model id, split, label type and width, complete rows), a dev store against the training
 * store (same shape and weights).
 * @module
 */
import type { StoreReader } from "../../data/h5_store.ts";
import { kindOf, type Task } from "../../tasks/mod.ts";

/** What the flags say the store must be (any field left out is not checked). */
export interface StoreExpectations {
  /** The task the head is for (the store's `task` attribute must match when present). */
  task: Task;
  /** `--layout`: "full" (every token) or "cls". */
  layout?: "full" | "cls";
  /** `--model`/BERT id the activations must come from (`model_id` attribute). */
  modelId?: string;
  /** "train" or "dev": a store whose `split` attribute says otherwise is refused. */
  role?: "train" | "dev";
}

/**
 * Checks an opened store against the flags, throwing a message that names the file, what it
 * holds and the flag that disagrees, e.g. "HDF5 file X was captured with layout full but
 * --layout cls was given".
 */
export function checkStore(reader: StoreReader, e: StoreExpectations): void {
  const file = `HDF5 file ${reader.path}`;
  const a = reader.attrs;
  const s = reader.shape;
  if (e.layout && s.layout !== e.layout) {
    throw new Error(
      `${file} was captured with layout ${s.layout} but --layout ${e.layout} was given`,
    );
  }
  if (typeof a.task === "string" && a.task.toLowerCase() !== e.task.name) {
    throw new Error(`${file} was captured for task ${a.task} but --task ${e.task.name} was given`);
  }
  if (e.modelId !== undefined && a.model_id !== undefined && String(a.model_id) !== e.modelId) {
    throw new Error(
      `${file} was captured with model ${a.model_id} but --model ${e.modelId} was given`,
    );
  }
  if (e.role && typeof a.split === "string") {
    const isTrain = a.split.startsWith("train");
    if (e.role === "train" && !isTrain) {
      throw new Error(`${file} holds the ${a.split} split but was given as the training file`);
    }
    if (e.role === "dev" && (isTrain || a.split.startsWith("test"))) {
      throw new Error(`${file} holds the ${a.split} split but was given as the dev file`);
    }
  }
  const kind = kindOf(e.task);
  if (kind.readout === "token" && s.layout !== "full") {
    throw new Error(
      `${file} has layout cls; ${kind.name} task ${e.task.name} needs every token (full)`,
    );
  }
  if (reader.labelWidth !== kind.labelWidth) {
    throw new Error(
      `${file} has ${reader.labelWidth} ${reader.labelWidth === 1 ? "label" : "labels"} per ` +
        `row; ${kind.name} task ${e.task.name} needs ${kind.labelWidth}`,
    );
  }
  const lt = a.label_type;
  if (typeof lt === "string" && lt !== kind.labelType) {
    throw new Error(
      `${file} stores ${lt} labels; task ${e.task.name} (${kind.name}) needs ${kind.labelType}`,
    );
  }
  if (!reader.complete || reader.rowsComplete < s.n) {
    throw new Error(
      `${file} is incomplete: ${reader.rowsComplete} of ${s.n} rows captured and no completion ` +
        `marker (an interrupted capture? rerun it to finish)`,
    );
  }
}

/** Throws unless two stores hold activations of the same shape and weights (when recorded). */
export function checkSameCapture(train: StoreReader, dev: StoreReader): void {
  const t = train.shape, d = dev.shape;
  for (const k of ["layers", "tokens", "hidden", "layout"] as const) {
    if (t[k] !== d[k]) {
      throw new Error(
        `HDF5 file ${dev.path} has ${k} ${d[k]} but the training file ${train.path} has ${t[k]}; ` +
          `capture both with the same model and settings`,
      );
    }
  }
  // The weights themselves, not a directory name: two checkpoints in folders of the same name
  // are different models.
  const wt = train.attrs.weights_hash, wd = dev.attrs.weights_hash;
  if (wt !== undefined && wd !== undefined && wt !== wd) {
    throw new Error(
      `HDF5 file ${dev.path} was captured from other weights (weights_hash ${wd}, model ` +
        `${dev.attrs.model_id}) than the training file ${train.path} (${wt}, model ` +
        `${train.attrs.model_id}); capture both from the same checkpoint`,
    );
  }
}
