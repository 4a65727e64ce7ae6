/**
 * Hyperparameter search (`deno task search`): the seed's `models/ap_hypersearch` and
 * `ap_glue/__main__hyperopt.py` — hyperopt's TPE over adapter size ∈ {8, ..., 256}, learning
 * rate ~ U(1e-6, 1e-3) and seed ~ qU(1, 2000, 1), maximizing the dev accuracy (the task's main dev
 * metric), with a budget of trials or of wall time — plus early stopping of poor trials.
 *
 * - What a trial trains: a BERTVision head (from stores, `head.trainH5`/`devH5`, or streamed
 *   from a checkpoint, `head.stream`), or BERT itself (`target: "bert"`, train/finetune.ts).
 *   Settings not searched are the task's preset (the seed's command), as `glue` runs them.
 * - Sampler: TPE as hyperopt runs it (train/search/tpe.ts; random from the prior for the first
 *   `startup` trials), or random search. Space: the seed's by default, or a space file
 *   (train/search/space.ts); a training flag given (`--lr`, `--adapter-dim`, `--seed`, ...)
 *   fixes that hyperparameter instead of searching it.
 * - Early stopping: successive halving across evaluation points (train/search/prune.ts): each
 *   trial is evaluated on dev at `rungs` points, E/η^(R−1), ..., E; one not among the best 1/η
 *   at a rung stops there ("pruned").
 * - Heads trained together: up to `trialsPerPass` trials of one TPE batch train from the same
 *   pass over the data (train/heads/pass.ts `trainHeads`: each batch's hidden states read or
 *   streamed once for all), their data order the first trial's seed (or `head.dataSeed`), each
 *   head initialised from its own. Each trial records the pass's `dataSeed` (its log's start
 *   record, its results.json, `best.json`), and its flags carry `--data-seed` where it differs
 *   from `--seed`, so any trial trains again alone exactly. Stream mode defaults to 4 per pass
 *   (one BERT forward per batch for all), stores to 1 (every trial's seed then orders its data
 *   too).
 * - The study log (train/search/log.ts): JSON lines, one file per worker in the study folder,
 *   merged on read. A rerun resumes: finished trials are not run again; the worker's own
 *   interrupted trials run first — a head trial from its start again (heads train in seconds to
 *   minutes), a BERT trial resumed from its last rung checkpoint (fine-tuning resumes), keeping
 *   the decisions already logged. `trials` counts every trial the study started (all workers):
 *   a rerun with a larger number goes on. Several workers may share a study; each counts the
 *   others' trials, so together they may start up to (workers − 1) × trialsPerPass more.
 * - Outputs in the study folder: `trials-<worker>.jsonl`, `trials/<id>/` (each trial's head or
 *   fine-tuning run), and after every pass `best.json` (the best complete trial: its
 *   hyperparameters, score, dev metrics, folder and the flags that train it again),
 *   `trials.md` (a table of every trial) and `trials.svg` (score against trial, running best).
 *
 * Checked by train/search/study_test.ts and tests/search_test.ts.
 * @module
 */
import { Rng } from "../../data/rng.ts";
import { InputError } from "../../data/errors.ts";
import { regularFileExists } from "../../data/files.ts";
import { formatMetric, resolveTask, type Task } from "../../tasks/mod.ts";
import { type HeadVariant, type TrainApOptions, trainHeads } from "../heads/mod.ts";
import { fineTune, type FineTuneOptions, planFineTune } from "../finetune.ts";
import { batchesPerEpoch, DivergenceError, mainMetric, stepsFor } from "../loop.ts";
import { settingsDiff, settingsMismatch } from "../../data/output/mod.ts";
import { seedSettings } from "../presets.ts";
import { SEARCH_DEFAULTS } from "../defaults.ts";
import {
  PRECISION_DEFAULTS,
  type PrecisionChoice,
  precisionFix,
  resumePrecision,
} from "../precision.ts";
import { gpu, initGpu } from "../../model/tensor.ts";
import { defaultSpace, describeSpace, randomParams } from "./space.ts";
import { type Observation, tpeSuggest } from "./tpe.ts";
import { rungEpochs, SuccessiveHalving } from "./prune.ts";
import {
  readStudy,
  type Study,
  STUDY_LOG_VERSION,
  type StudyHeader,
  type Trial,
  type TrialEnd,
  type TrialEval,
  type TrialStart,
  WorkerLog,
} from "./log.ts";
import {
  givenPrecision,
  type SearchOptions,
  studySettings,
  trialFlags,
  trialOptions,
  withFixed,
} from "./study_settings.ts";
import { bestTrial, summaryOf, writeReports } from "./study_report.ts";

/** Moved to study_settings.ts and study_report.ts; exported here, where callers import them. */
export { bestTrial, type SearchOptions, summaryOf, trialFlags, trialOptions };

/** What {@linkcode runSearch} returns. */
export interface SearchResult {
  /** The study as every worker's log tells it, after this run. */
  study: Study;
  /** The best complete trial. */
  best?: Trial;
  /** Trials this run finished. */
  ran: number;
  /** This run's worker name. */
  worker: string;
  /** The report files. */
  files: string[];
  /** The report as Markdown (what `trials.md` holds). */
  markdown: string;
}

/** The study's successive-halving state from every trial's logged evaluations. */
function halvingOf(study: Study, eta: number): SuccessiveHalving {
  const sh = new SuccessiveHalving(eta);
  for (const t of study.trials) {
    if (t.state === "failed") continue; // a diverged run's scores judge no one
    for (const e of t.evals) {
      sh.record(t.id, e.rung, e.score ?? NaN);
      if (e.goOn !== null) sh.setDecision(t.id, e.rung, e.goOn);
    }
  }
  return sh;
}

/**
 * The sampler's history: every trial the study started, in start order, loss = −score; a failed
 * trial, one still running (or interrupted) and one without a score have loss +∞, as hyperopt's
 * `tpe.suggest` counts new, running and failed trials (toward `n_startup_jobs` too).
 */
export function observations(study: Study): Observation[] {
  return study.trials.map((t) => ({
    params: t.params,
    loss: (t.state === "complete" || t.state === "pruned") && Number.isFinite(t.score)
      ? -(t.score as number)
      : Infinity,
  }));
}

/** A trial about to run: what its start record will say, with its id. */
type Planned =
  & Pick<TrialStart, "number" | "params" | "pass" | "dir" | "attempt" | "dataSeed">
  & { id: string };

/** What the passes share. */
interface Ctx {
  o: SearchOptions;
  task: Task;
  log: WorkerLog;
  sh: SuccessiveHalving;
  rungs: number[];
  epochs: number;
  /** BERT trials: the training rows (for the rungs' steps), found once. */
  bertRows?: number;
  /** Every trial's precision, resolved once. */
  precision: PrecisionChoice;
  note: (msg: string) => void;
}

/**
 * Runs (or resumes) a study: passes of trials until `trials` have started in the whole study or
 * `minutes` have passed, then writes the reports. Returns the merged study and its best trial.
 *
 * @example
 * ```ts ignore
 * const r = await runSearch({ task: "sst2", target: "head", out: "studies/sst2-ap",
 *   head: { trainH5: "train.h5", devH5: "dev.h5" }, trials: 20 });
 * console.log(r.best?.params, r.best?.score);
 * ```
 */
export async function runSearch(o: SearchOptions): Promise<SearchResult> {
  const task = resolveTask(o.task);
  if (o.target === "head" && !o.head) throw new Error(`runSearch: head trials need head options`);
  if (o.target === "bert" && !o.bert) throw new Error(`runSearch: BERT trials need bert options`);
  const stage = o.target === "bert" ? "bert" : "ap";
  const epochs = (o.target === "bert" ? o.bert!.epochs : o.head!.epochs) ??
    seedSettings(task.name, stage).epochs;
  const eta = o.eta ?? SEARCH_DEFAULTS.eta;
  const rungs = rungEpochs(epochs, eta, o.rungs ?? SEARCH_DEFAULTS.rungs);
  const pooling = o.head?.model ?? "ap";
  const { space } = withFixed(o.space ?? defaultSpace(o.target, pooling), o);
  await initGpu();
  const note = (msg: string) => {
    if (!o.silent) console.error(msg);
  };
  const log = await WorkerLog.open(o.out, {
    worker: o.worker,
    breakLock: o.breakLock,
    onNote: note,
  });
  try {
    let study = await readStudy(o.out);
    // Every trial's precision: given, else the study's own (its first worker's log), else the
    // preset; then compared with every worker's like the other settings.
    const first = study.headers[0];
    const precision = resumePrecision(
      gpu(),
      givenPrecision(o),
      first ? { what: `the study in ${o.out}`, settings: first.settings } : null,
    );
    const settings = await studySettings(task, o, space, rungs, precision.precision);
    for (const h of study.headers) {
      const diff = settingsDiff(h.settings, settings, undefined, PRECISION_DEFAULTS);
      if (diff.length) {
        throw settingsMismatch(
          o.out,
          diff,
          `worker ${h.worker}'s log; ${precisionFix(diff, "use another --out")}`,
        );
      }
    }
    if (await log.empty()) {
      await log.write<StudyHeader>({ type: "study", version: STUDY_LOG_VERSION, settings });
    }
    const perPass = o.target === "bert"
      ? 1
      : o.trialsPerPass ?? (o.head!.stream ? SEARCH_DEFAULTS.streamTrialsPerPass : 1);
    const maxTrials = o.trials ?? (o.minutes !== undefined ? Infinity : SEARCH_DEFAULTS.trials);
    const deadline = o.minutes !== undefined ? Date.now() + o.minutes * 60_000 : Infinity;
    note(
      `search ${task.name} (${o.target === "bert" ? "BERT" : pooling}): worker ${log.worker}, ` +
        `${describeSpace(space)}; ${o.sampler ?? SEARCH_DEFAULTS.sampler}, rungs at epochs ` +
        `${rungs.join(", ")} (η ${eta}); precision ${precision.precision} (${precision.why}); ` +
        `${study.trials.length} trial(s) in the study so far`,
    );
    const ctx: Ctx = { o, task, log, sh: halvingOf(study, eta), rungs, epochs, note, precision };
    let ran = 0;
    for (;;) {
      study = await readStudy(o.out);
      ctx.sh = halvingOf(study, eta);
      if (Date.now() >= deadline) break;
      const mine = study.trials.filter((t) => t.worker === log.worker && t.state === "running");
      let pass: Planned[];
      if (mine.length) {
        // This worker's interrupted trials first, with the trials they ran with.
        pass = mine.filter((t) => t.pass === mine[0].pass).slice(0, perPass).map((t) => ({
          id: t.id,
          number: t.number,
          params: t.params,
          pass: t.pass,
          dir: t.dir,
          attempt: t.attempt + 1,
          dataSeed: t.dataSeed,
        }));
        // The pass's data order again (a log without it: the first trial's seed's, as then).
        const ds = pass.find((t) => t.dataSeed !== undefined)?.dataSeed;
        for (const t of pass) t.dataSeed = ds;
        note(`resuming interrupted trial(s) ${pass.map((t) => t.id).join(", ")}`);
      } else {
        if (study.trials.length >= maxTrials) break;
        const k = Math.min(perPass, maxTrials - study.trials.length);
        const next = 1 + Math.max(
          0,
          ...study.trials.filter((t) => t.worker === log.worker).map((t) => t.number),
        );
        const history = observations(study);
        pass = [];
        for (let i = 0; i < k; i++) {
          const id = `${log.worker}-${String(next + i).padStart(4, "0")}`;
          const rng = new Rng(o.samplerSeed ?? SEARCH_DEFAULTS.samplerSeed, `suggest ${id}`);
          const params = (o.sampler ?? SEARCH_DEFAULTS.sampler) === "random"
            ? randomParams(space, rng)
            : tpeSuggest(space, history, rng, { startup: o.startup ?? SEARCH_DEFAULTS.startup });
          pass.push({ id, number: next + i, params, pass: "", dir: `trials/${id}`, attempt: 1 });
        }
        for (const t of pass) t.pass = pass[0].id;
      }
      if (o.target === "head") {
        // One data order for the pass: the given --data-seed, else its first trial's seed.
        const first = pass[0].dataSeed ?? o.head!.dataSeed ?? pass[0].params.seed ??
          o.head!.seed ?? seedSettings(task.name, "ap").seed;
        for (const t of pass) t.dataSeed = Number(first);
      }
      for (const t of pass) {
        await log.write<TrialStart>({
          type: "start",
          trial: t.id,
          number: t.number,
          params: t.params,
          pass: t.pass,
          dir: t.dir,
          attempt: t.attempt,
          ...(t.dataSeed !== undefined ? { dataSeed: t.dataSeed } : {}),
        });
      }
      if (o.target === "bert") await runBertTrial(ctx, pass[0]);
      else await runHeadPass(ctx, pass);
      ran += pass.length;
      await writeReports(o.out, task, o, space, rungs, eta, await readStudy(o.out), precision);
    }
    study = await readStudy(o.out);
    const { files, markdown } = await writeReports(
      o.out,
      task,
      o,
      space,
      rungs,
      eta,
      study,
      precision,
    );
    return { study, best: bestTrial(study), ran, worker: log.worker, files, markdown };
  } finally {
    log.release();
  }
}

/** The main dev metric's value (NaN when absent). */
function scoreOf(task: Task, metrics: Record<string, number> | undefined): number {
  if (!metrics || !Object.keys(metrics).length) return NaN;
  return mainMetric(metrics, task.primaryMetric).value;
}

/** Head trials of one pass: trained together, evaluated at the rungs, halved, logged. */
async function runHeadPass(ctx: Ctx, trials: Planned[]): Promise<void> {
  const { o, task, log, sh, rungs } = ctx;
  const t0 = performance.now();
  const seconds = () => (performance.now() - t0) / 1000;
  const stopped = new Map<number, TrialEval>();
  const variants: HeadVariant[] = trials.map((t) => ({
    ...trialOptions("head", t.params) as HeadVariant,
    outDir: `${o.out}/${t.dir}`,
  }));
  const base: TrainApOptions = {
    ...o.head!,
    precision: ctx.precision,
    task,
    outDir: variants[0].outDir!,
    // One data order for the pass (each trial's start record has it); each head initialises
    // from its own seed.
    seed: variants[0].seed ?? o.head!.seed,
    dataSeed: trials[0].dataSeed,
    patience: 0, // successive halving does the stopping
    preset: true,
    evalAt: rungs.slice(0, -1),
    overwrite: true, // a trial run again replaces what its interrupted attempt left
    silent: o.silent,
    onEval: async (evals) => {
      // Every trial of the pass joins its rung before any is judged.
      const scores = evals.map((e) => (e ? scoreOf(task, e.metrics) : NaN));
      trials.forEach((t, i) => evals[i] && sh.record(t.id, evals[i]!.index, scores[i]));
      const go: boolean[] = [];
      for (const [i, t] of trials.entries()) {
        const e = evals[i];
        if (!e) {
          go.push(true);
          continue;
        }
        const goOn = sh.decide(t.id, e.index);
        const rec = await log.write<TrialEval>({
          type: "eval",
          trial: t.id,
          rung: e.index,
          epoch: e.epoch,
          score: scores[i],
          metrics: e.metrics,
          goOn,
          seconds: seconds(),
        });
        if (!goOn) stopped.set(i, rec);
        go.push(goOn);
      }
      return go;
    },
  };
  let results;
  try {
    results = await trainHeads(base, variants);
  } catch (e) {
    if (!(e instanceof DivergenceError)) throw e;
    if (trials.length > 1) {
      // One head diverged and took the pass down: each trial again from its start, alone (its
      // own data order), its scores and decisions of the pass forgotten.
      ctx.note(`a head diverged (${e.message}); training the pass's trials one by one`);
      for (const t of trials) {
        sh.forget(t.id);
        const again = {
          ...t,
          pass: t.id,
          attempt: t.attempt + 1,
          dataSeed: Number(t.params.seed ?? o.head!.seed ?? seedSettings(task.name, "ap").seed),
        };
        await log.write<TrialStart>({
          type: "start",
          trial: t.id,
          number: t.number,
          params: t.params,
          pass: again.pass,
          dir: t.dir,
          attempt: again.attempt,
          dataSeed: again.dataSeed,
        });
        await runHeadPass(ctx, [again]);
      }
      return;
    }
    sh.forget(trials[0].id);
    await log.write<TrialEnd>({
      type: "end",
      trial: trials[0].id,
      state: "failed",
      score: null,
      seconds: seconds(),
      error: e.message,
    });
    ctx.note(`trial ${trials[0].id} failed: ${e.message}`);
    return;
  }
  for (const [i, r] of results.entries()) {
    r.head.dispose();
    const t = trials[i];
    const halted = stopped.get(i);
    if (halted) {
      await log.write<TrialEnd>({
        type: "end",
        trial: t.id,
        state: "pruned",
        score: halted.score,
        metrics: halted.metrics,
        seconds: seconds(),
      });
      ctx.note(
        `trial ${t.id} pruned at epoch ${fmt(halted.epoch)}: ${
          formatMetric(task.primaryMetric, halted.score)
        }`,
      );
      continue;
    }
    const score = scoreOf(task, r.devMetrics);
    await log.write<TrialEval>({
      type: "eval",
      trial: t.id,
      rung: rungs.length - 1,
      epoch: ctx.epochs,
      score,
      metrics: r.devMetrics ?? {},
      goOn: null,
      seconds: seconds(),
    });
    await log.write<TrialEnd>({
      type: "end",
      trial: t.id,
      state: "complete",
      score,
      metrics: r.devMetrics,
      seconds: seconds(),
    });
    ctx.note(
      `trial ${t.id} (${
        trialFlags(t.params, t.dataSeed, ctx.precision.precision)
      }): ${task.primaryMetric} ${formatMetric(task.primaryMetric, score)}`,
    );
  }
}

/** An epoch count as the notes print it (metrics: tasks/metrics.ts `formatMetric`). */
function fmt(x: number): string {
  return Number.isFinite(x) ? String(Number(x.toPrecision(4))) : String(x);
}

/** The step of the last checkpoint a fine-tuning run saved (0 for none). */
async function savedStep(dir: string): Promise<number> {
  regularFileExists(`${dir}/trainer_state.json`); // a FIFO there would block the read
  try {
    const st = JSON.parse(await Deno.readTextFile(`${dir}/trainer_state.json`));
    return typeof st.step === "number" ? st.step : 0;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw new InputError(`${dir}/trainer_state.json: unreadable (${e})`, {
      file: `${dir}/trainer_state.json`,
    });
  }
}

/**
 * One BERT trial: fine-tuning with a checkpoint at each rung, stopped at each (fineTune's
 * `stopAfterSteps`) for the decision, resumed from it when the trial goes on. A rerun after an
 * interruption resumes from the last checkpoint. When it ends, the checkpoints' optimizer
 * states, and the weights of every checkpoint but a complete trial's last, are removed.
 */
async function runBertTrial(ctx: Ctx, t: Planned): Promise<void> {
  const { o, task, log, sh, rungs } = ctx;
  const t0 = performance.now();
  const seconds = () => (performance.now() - t0) / 1000;
  const dir = `${o.out}/${t.dir}`;
  const p = trialOptions("bert", t.params) as Partial<FineTuneOptions>;
  const base = {
    ...o.bert!,
    precision: ctx.precision,
    task,
    preset: true,
    silent: o.silent,
    patience: 0,
  };
  ctx.bertRows ??= (await planFineTune({ ...base, outDir: `${o.out}/.rows` }, false))[0].rows;
  const batchSize = p.batchSize ?? o.bert!.batchSize ?? seedSettings(task.name, "bert").batchSize;
  const perEpoch = batchesPerEpoch(ctx.bertRows, batchSize);
  const steps = rungs.map((e) => stepsFor(e, perEpoch));
  // A rung on the same step as the next one is the next one.
  const kept = rungs.map((_, k) => k).filter((k) =>
    k === rungs.length - 1 || steps[k] < steps[k + 1]
  );
  const ft: FineTuneOptions = {
    ...base,
    ...p,
    epochs: ctx.epochs,
    outDir: dir,
    saveAt: kept.map((k) => rungs[k]),
  };
  const done = new Set<number>();
  try {
    for (;;) {
      const at = await savedStep(dir);
      const next = kept.find((k) => steps[k] > at);
      const last = next === undefined || next === rungs.length - 1;
      const r = await fineTune({ ...ft, stopAfterSteps: last ? undefined : steps[next!] - at });
      for (const k of kept) {
        if (done.has(k)) continue;
        const metrics = r.dev[String(rungs[k])];
        if (!metrics) break;
        done.add(k);
        const score = scoreOf(task, metrics);
        const final = k === rungs.length - 1;
        if (!final) sh.record(t.id, k, score);
        const goOn = final ? null : sh.decide(t.id, k);
        await log.write<TrialEval>({
          type: "eval",
          trial: t.id,
          rung: k,
          epoch: rungs[k],
          score,
          metrics,
          goOn,
          seconds: seconds(),
        });
        if (goOn === false || final) {
          await log.write<TrialEnd>({
            type: "end",
            trial: t.id,
            state: final ? "complete" : "pruned",
            score,
            metrics,
            seconds: seconds(),
          });
          ctx.note(
            `trial ${t.id} (${trialFlags(t.params, undefined, ctx.precision.precision)}): ` +
              `${final ? "" : "pruned, "}` +
              `${task.primaryMetric} ${formatMetric(task.primaryMetric, score)} at epoch ${
                fmt(rungs[k])
              }`,
          );
          await dropCheckpoints(dir, final ? `checkpoint-${rungs[k]}` : null);
          return;
        }
      }
      if (last && !r.stopped) {
        throw new Error(`trial ${t.id}: fine-tuning ended without dev metrics at every rung`);
      }
    }
  } catch (e) {
    if (!(e instanceof DivergenceError)) throw e;
    sh.forget(t.id);
    await log.write<TrialEnd>({
      type: "end",
      trial: t.id,
      state: "failed",
      score: null,
      seconds: seconds(),
      error: e.message,
    });
    ctx.note(`trial ${t.id} failed: ${e.message}`);
    await dropCheckpoints(dir, null);
  }
}

/** Removes a finished BERT trial's optimizer states, and the weights of all but `keep`. */
async function dropCheckpoints(dir: string, keep: string | null): Promise<void> {
  const rm = (p: string) =>
    Deno.remove(p).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isDirectory || !e.name.startsWith("checkpoint-")) continue;
      await rm(`${dir}/${e.name}/optimizer.safetensors`);
      if (e.name !== keep) await rm(`${dir}/${e.name}/model.safetensors`);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}
