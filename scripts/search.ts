/**
 * search: the seed's hyperparameter search (`models/ap_hypersearch`,
 * `ap_glue/__main__hyperopt.py`): hyperopt's TPE over adapter size ∈ {8, 16, 32, 64, 128, 256},
 * learning rate ~ U(1e-6, 1e-3) and seed ∈ 1..2000, maximizing the dev accuracy (the task's
 * main dev metric), within a number of trials or a time budget; plus successive halving, which
 * stops a trial early at an evaluation point where it is not among the best third.
 *
 * ```
 * # heads on stored activations (deno task capture), 20 trials
 * deno task search --task sst2 --h5 train.h5 --dev-h5 dev.h5 --trials 20
 * # heads on hidden states a checkpoint computes (no store), 4 trials per pass, 2 hours
 * deno task search --task sst2 --activations stream --bert runs/sst2-bert/checkpoint-1 \
 *   --data-dir glue_data --minutes 120
 * # fine-tuning BERT itself
 * deno task search --task rte --model bert --bert bert-base-uncased --data-dir glue_data
 * ```
 * Writes the study to `--out` (default `results/<task>/search-<model>`, where `deno task report results` finds it): a JSON-lines log per worker
 * (`trials-<worker>.jsonl`; several workers may share a study), each trial's run under
 * `trials/<id>/`, and `best.json`, `trials.md`, `trials.svg`. Rerun the same command to resume
 * (finished trials are kept; interrupted ones run again). Prints the table and the best trial.
 *
 * What it costs: each head trial is one head training (seconds to minutes from a store; in
 * stream mode a BERT forward over the training set per pass, shared by the pass's trials) plus
 * up to `--rungs` dev evaluations; successive halving (η 3, 3 rungs) stops most trials at 1/9
 * or 1/3 of their epochs. A BERT trial is a fine-tuning run with a checkpoint per rung. The seed
 * did not publish its search's numbers; its tuned values are the presets (train/presets.ts).
 * @module
 */
import {
  parseCommand,
  runMain,
  squadSettings,
  streamOptions,
  tuneKernels,
  UsageError,
} from "./_cli.ts";
import {
  defaultSpace,
  defaultSpaceName,
  readSpace,
  SEED_SPACES,
  type Space,
} from "../train/search/space.ts";
import { runSearch, type SearchOptions } from "../train/search/study.ts";
import { parseShard } from "../data/shard.ts";

/**
 * The worker's name: `--worker`, or with `--shard I/N` (`auto/N` in a Slurm array or Kubernetes
 * Indexed Job) `shard-I`, so a resubmitted array task resumes its own log; else undefined (the
 * host name).
 */
function workerName(worker: string | undefined, shard: string | undefined): string | undefined {
  if (shard === undefined) return worker;
  if (worker !== undefined) {
    throw new UsageError(
      `give --worker NAME or --shard I/N (which names the worker shard-I), not both`,
    );
  }
  return `shard-${parseShard(shard).index}`;
}
import { resolveModel } from "../model/checkpoint.ts";
import type { Pooling } from "../model/heads.ts";

/** Parses and runs one search command. */
export async function main(args: string[]): Promise<void> {
  const { mode, values: v } = parseCommand("search", args);
  const n = (name: string) => v[name] as number | undefined;
  const s = (name: string) => v[name] as string | undefined;
  const task = v.task as string;
  const model = (v.model as string | undefined) ?? "ap";
  const target = mode === "search:bert" ? "bert" : "head";
  const devSplits = s("dev-split")?.split(",").map((x) => x.trim());
  if (devSplits && s("dev-file")) {
    throw new UsageError(
      `give --dev-split (splits under --data-dir) or --dev-file (one file), not both`,
    );
  }
  await tuneKernels();
  const common = {
    batchSize: n("batch-size"),
    epochs: n("epochs"),
    lr: n("lr"),
    l2: n("l2"),
    warmupProportion: n("warmup-proportion"),
    seed: n("seed"),
    breakLock: !!v["break-lock"],
    silent: !!v.quiet,
  };
  const { space, trials, trainFraction } = await searchSpace(v, task, target, model);
  const o: SearchOptions = {
    task,
    target,
    out: s("out") ?? `results/${task}/search-${model}`,
    space,
    trials,
    minutes: n("minutes"),
    sampler: v.sampler as "tpe" | "random" | undefined,
    startup: n("startup-trials"),
    samplerSeed: n("sampler-seed"),
    eta: n("eta"),
    rungs: n("rungs"),
    trialsPerPass: n("trials-per-pass"),
    worker: workerName(s("worker"), v.shard as string | undefined),
    precision: s("precision") as "f32" | "f16-mixed" | undefined,
    breakLock: !!v["break-lock"],
    silent: !!v.quiet,
  };
  if (target === "bert") {
    o.bert = {
      ...common,
      modelDir: await resolveModel(s("bert") ?? "bert-base-uncased"),
      dataDir: s("data-dir")!,
      trainSplit: s("train-file"),
      devSplit: s("dev-file"),
      devSplits,
      maxSeqLength: n("max-seq-length"),
      limit: n("limit"),
      devLimit: n("dev-limit"),
      numWorkers: n("num-workers"),
      docStride: n("doc-stride"),
      squad: squadSettings(v),
    };
  } else {
    o.head = {
      ...common,
      model: v.model as Pooling | undefined, // given: fixed, not searched
      adapterDim: n("adapter-dim"),
      shared: !v["no-shared"],
      skip: !!v.skip,
      trainFraction,
      layout: v.layout as "full" | "cls" | undefined,
      trainH5: s("h5"),
      devH5: v["dev-h5"] as string[] | undefined,
      devFile: mode === "search:head" ? s("dev-file") : undefined,
      devModel: mode === "search:head" ? s("bert") : undefined,
      stream: mode === "search:stream" ? streamOptions(v, devSplits) : undefined,
      squad: squadSettings(v),
    };
  }
  const r = await runSearch(o);
  console.log(r.markdown);
  console.log(
    JSON.stringify(
      {
        worker: r.worker,
        ran: r.ran,
        trials: r.study.trials.length,
        best: r.best
          ? {
            trial: r.best.id,
            score: r.best.score,
            params: r.best.params,
            dir: `${o.out}/${r.best.dir}`,
          }
          : null,
        files: r.files,
      },
      null,
      2,
    ),
  );
}

/**
 * `--space`: one of the seed's searches by name (train/search/space.ts `SEED_SPACES`; default
 * `seed-ap-glue` for heads, `seed-bert` for BERT), whose evaluations and share of training rows
 * fill `--trials` and `--train-fraction` where not given; or a JSON space file, which sets the
 * space only. Says on stderr what a named search set and where the seed defines it.
 */
export async function searchSpace(
  v: Record<string, unknown>,
  task: string,
  target: "head" | "bert",
  model: string,
): Promise<{ space?: Space; trials?: number; trainFraction?: number }> {
  const given = v.space as string | undefined;
  const trials = v.trials as number | undefined;
  const fraction = v["train-fraction"] as number | undefined;
  const name = given ?? defaultSpaceName(target);
  const preset = SEED_SPACES[name];
  if (!preset) {
    if (given!.startsWith("seed-") && !given!.endsWith(".json")) {
      throw new UsageError(
        `--space ${given}: not one of the seed's searches (${
          Object.keys(SEED_SPACES).join(", ")
        })` +
          `; or give a JSON space file`,
      );
    }
    return { space: await readSpace(given!, target), trials, trainFraction: fraction };
  }
  if (preset.target !== target) {
    throw new UsageError(
      `--space ${name} is the seed's search of ${
        preset.target === "bert" ? "BERT (search --model bert)" : "heads (search --model ap|lp|avg)"
      }; for ${target === "bert" ? "BERT" : "heads"} use ${
        Object.entries(SEED_SPACES).filter(([, p]) => p.target === target).map(([k]) => k)
          .join(" or ")
      }`,
    );
  }
  // The default space alone keeps our default budget; a search named is the seed's whole run.
  if (given === undefined) return { trials, trainFraction: fraction };
  const shard = preset.shard?.tasks.includes(task) ? preset.shard.fraction : undefined;
  const out = {
    space: defaultSpace(target, model, name),
    trials: trials ?? (v.minutes === undefined ? preset.trials : undefined),
    trainFraction: fraction ?? (target === "head" ? shard : undefined),
  };
  const said = [
    `${out.trials === preset.trials && trials === undefined ? `${preset.trials} trials` : ""}`,
    shard !== undefined && target === "head" && fraction === undefined
      ? `--train-fraction ${shard} (the seed's --shard for ${task})`
      : "",
  ].filter(Boolean);
  console.error(
    `search: --space ${name}, the seed's search (${preset.source})${
      said.length ? `: ${said.join(", ")}` : ""
    }${
      shard !== undefined && target === "bert"
        ? `; the seed sampled ${shard * 100}% of ${task}'s training rows per trial, BERT ` +
          `trials here train on the whole split (--limit N takes its first N rows)`
        : ""
    }`,
  );
  return out;
}

if (import.meta.main) await runMain("search", () => main(Deno.args));
