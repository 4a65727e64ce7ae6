/**
 * A study's reports (train/search/study.ts runs it): its best complete trial, its summary for
 * report/search_report.ts, and `best.json`, `trials.md` and `trials.svg` in the study folder.
 * @module
 */
import { searchMarkdown, type SearchRow, searchSvg } from "../../report/search_report.ts";
import { type Task } from "../../tasks/mod.ts";
import { writeTextAtomic } from "../../data/output/mod.ts";
import { SEARCH_DEFAULTS } from "../defaults.ts";
import { type PrecisionChoice } from "../precision.ts";
import { describeSpace, type Space } from "./space.ts";
import { type Study, type Trial } from "./log.ts";
import { type SearchOptions, trialFlags } from "./study_settings.ts";

/** The best complete trial (highest score; the earlier of equal ones). */
export function bestTrial(study: Study): Trial | undefined {
  let best: Trial | undefined;
  for (const t of study.trials) {
    if (t.state !== "complete" || !Number.isFinite(t.score)) continue;
    if (!best || (t.score as number) > (best.score as number)) best = t;
  }
  return best;
}

/** A study as the report's summary. */
export function summaryOf(
  study: Study,
  task: Task,
  o: SearchOptions,
  space: Space,
  rungs: number[],
  eta: number,
): Parameters<typeof searchMarkdown>[0] {
  const best = bestTrial(study);
  const rows: SearchRow[] = study.trials.map((t) => ({
    id: t.id,
    worker: t.worker,
    state: t.state,
    score: t.score === undefined ? (t.evals.at(-1)?.score ?? null) : t.score,
    params: t.params,
    rungScores: rungs.map((_, k) => t.evals.find((e) => e.rung === k)?.score ?? null),
    seconds: t.end?.seconds,
    error: t.end?.error,
  }));
  const sampler = o.sampler ?? SEARCH_DEFAULTS.sampler;
  return {
    task: task.name,
    target: o.target === "bert" ? "BERT" : `${o.head?.model ?? "ap"} head`,
    metric: task.primaryMetric,
    space: describeSpace(space),
    sampler: sampler === "tpe"
      ? `TPE (hyperopt's; ${o.startup ?? SEARCH_DEFAULTS.startup} random trials first)`
      : "random",
    rungs,
    eta,
    rows,
    best: best?.id,
    dir: study.dir,
    logs: study.logs,
  };
}

/** `best.json`, `trials.md` and `trials.svg` in the study folder. */
export async function writeReports(
  dir: string,
  task: Task,
  o: SearchOptions,
  space: Space,
  rungs: number[],
  eta: number,
  study: Study,
  precision: PrecisionChoice,
): Promise<{ files: string[]; markdown: string }> {
  const summary = summaryOf(study, task, o, space, rungs, eta);
  const markdown = searchMarkdown(summary);
  const best = bestTrial(study);
  const files = [`${dir}/best.json`, `${dir}/trials.md`, `${dir}/trials.svg`];
  await writeTextAtomic(
    files[0],
    JSON.stringify(
      best
        ? {
          task: task.name,
          target: o.target,
          metric: task.primaryMetric,
          trial: best.id,
          score: best.score,
          params: best.params,
          ...(best.dataSeed !== undefined ? { dataSeed: best.dataSeed } : {}),
          flags: trialFlags(best.params, best.dataSeed, precision.precision),
          metrics: best.end?.metrics,
          dir: `${dir}/${best.dir}`,
          trials: study.trials.length,
        }
        : { task: task.name, target: o.target, trial: null, trials: study.trials.length },
      null,
      2,
    ) + "\n",
  );
  await writeTextAtomic(files[1], markdown);
  await writeTextAtomic(files[2], searchSvg(summary));
  return { files, markdown };
}
