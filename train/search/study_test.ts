// Hyperparameter search (train/search*.ts): hyperopt's TPE (its Parzen estimator by hand, and
// on a seeded synthetic objective reaching the good region more often than random search,
// deterministically), successive halving on trials whose scores are known (which stop at which
// rung), space files, the study log (two workers' files merged, a line cut short by a kill),
// and runSearch on tiny stores: pruned heads stop at their rung, two workers share a study, and
// a rerun resumes an interrupted trial without running the finished ones again.
import { deepStrictEqual, ok, rejects, throws } from "node:assert/strict";
import { Rng } from "../../data/rng.ts";
import { InputError } from "../../data/errors.ts";
import { LockedError } from "../../data/output/mod.ts";
import {
  describeSpace,
  type Params,
  parseSpace,
  randomParams,
  SEED_HEAD_SPACE,
  type Space,
} from "./space.ts";
import {
  adaptiveParzen,
  forgettingWeights,
  type Observation,
  splitTrials,
  tpePosterior,
  tpeSuggest,
} from "./tpe.ts";
import { promotes, rungEpochs, SuccessiveHalving } from "./prune.ts";
import { parseLog, readStudy, WorkerLog } from "./log.ts";
import { observations, runSearch } from "./study.ts";
import { searchStores } from "./_fixture.ts";

Deno.test("TPE: hyperopt's adaptive Parzen estimator, forgetting weights and split", () => {
  // hyperopt's adaptive_parzen_normal([0.2, 0.5, 0.9], 1, 0.5, 1) by its formula: the prior
  // goes before the equal 0.5, widths are the larger gap to a neighbour, clipped to
  // [1 / min(100, 5), 1], the prior's is 1.
  const m = adaptiveParzen([0.9, 0.2, 0.5], 1, 0.5, 1);
  deepStrictEqual(m.mu, [0.2, 0.5, 0.5, 0.9]);
  deepStrictEqual(m.sigma.map((x) => Number(x.toFixed(12))), [0.3, 1, 0.4, 0.4]);
  deepStrictEqual(m.w, [0.25, 0.25, 0.25, 0.25]);
  // One observation: the prior and a half-width component.
  deepStrictEqual(adaptiveParzen([0.8], 1, 0.5, 1).sigma, [1, 0.5]);
  // linear_forgetting_weights(27, 25): a ramp 1/27 → 1 over the 2 oldest, then ones.
  deepStrictEqual(forgettingWeights(27, 25).slice(0, 3), [1 / 27, 1, 1]);
  deepStrictEqual(forgettingWeights(3, 25), [1, 1, 1]);
  // ceil(0.25 · √16) = 1 below: the lowest loss; equal losses, the earlier first.
  const h = [3, 1, 2, 1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16].map((loss, i) => ({
    params: { i },
    loss,
  }));
  const { below, above } = splitTrials(h, 0.25);
  deepStrictEqual(below.map((o) => o.params.i), [1]);
  deepStrictEqual(above.length, 15);
});

/** Φ(z) by erf's Taylor series (|z| < 3 here), independent of tpe.ts's approximation. */
function phi(z: number): number {
  const x = z / Math.SQRT2;
  let term = x, sum = x;
  for (let n = 1; n < 80; n++) {
    term *= -x * x / n;
    sum += term / (2 * n + 1);
  }
  return 0.5 * (1 + 2 / Math.sqrt(Math.PI) * sum);
}

Deno.test("TPE as hyperopt: a pseudo-count per option; failed and running trials at +∞; the seed a quniform", () => {
  // The seed's seed is hp.uniformint(1, 2000): quniform with q = 1, not 2000 categories.
  deepStrictEqual(SEED_HEAD_SPACE.seed, { kind: "quniform", lo: 1, hi: 2000, q: 1 });
  const space: Space = {
    "adapter-dim": { kind: "choice", options: [8, 16, 32] },
    seed: { kind: "quniform", lo: 1, hi: 10, q: 1 },
  };
  // Four trials: the best, a failed one (+∞), another, one still running (no score: NaN).
  const history: Observation[] = [
    { params: { "adapter-dim": 16, seed: 3 }, loss: -0.9 },
    { params: { "adapter-dim": 8, seed: 7 }, loss: Infinity },
    { params: { "adapter-dim": 32, seed: 5 }, loss: -0.5 },
    { params: { "adapter-dim": 8, seed: 9 }, loss: NaN },
  ];
  // ceil(0.25 · √4) = 1 below (the first); the other three, the failed and running included,
  // above.
  const post = tpePosterior(space, history);
  const p = (d: { logPdf(x: number): number }, x: number) => Math.exp(d.logPdf(x));
  const near = (a: number, b: number, what: string) =>
    ok(Math.abs(a - b) < 1e-6, `${what}: ${a}, by hand ${b}`);
  // Choice: observed counts + 1 per option. Below {16}: [1, 2, 1] / 4; above {8, 32, 8}:
  // [3, 1, 2] / 6.
  const dim = post["adapter-dim"];
  [[8, 1 / 4], [16, 2 / 4], [32, 1 / 4]].forEach(([x, v]) => near(p(dim.below, x), v, `l(${x})`));
  [[8, 3 / 6], [16, 1 / 6], [32, 2 / 6]].forEach(([x, v]) => near(p(dim.above, x), v, `g(${x})`));
  // Seed: hyperopt's GMM1_lpdf with q = 1, the mass of [x − ½, x + ½] ∩ [1, 10] over the mass of
  // [1, 10]. Prior N(5.5, 9). Below {3}: components (3, 4.5), (5.5, 9), equal weights. Above
  // {7, 5, 9}: sorted with the prior (5, 5.5, 7, 9), widths the larger neighbour gap clipped to
  // [9 / 5, 9], the prior's 9: (5, 1.8), (5.5, 9), (7, 2), (9, 2), equal weights.
  const gmm = (comps: number[][], x: number) => {
    const mass = (a: number, b: number) =>
      comps.reduce((s, [m, sd]) => s + (phi((b - m) / sd) - phi((a - m) / sd)) / comps.length, 0);
    return mass(Math.max(1, x - 0.5), Math.min(10, x + 0.5)) / mass(1, 10);
  };
  const l = [[3, 4.5], [5.5, 9]], g = [[5, 1.8], [5.5, 9], [7, 2], [9, 2]];
  for (const x of [1, 3, 6, 10]) {
    near(p(post.seed.below, x), gmm(l, x), `l(seed ${x})`);
    near(p(post.seed.above, x), gmm(g, x), `g(seed ${x})`);
  }
  // The failed and running trials count toward the startup trials: with startup 4 this history
  // is past it (TPE), with 5 not (a random draw); leaving them out would make both random.
  const draw = (startup: number) => tpeSuggest(space, history, new Rng(1, "s"), { startup });
  const random = randomParams(space, new Rng(1, "s"));
  deepStrictEqual(draw(5), random);
  ok(JSON.stringify(draw(4)) !== JSON.stringify(random), `TPE drew the prior's draw`);
  // The study's history: every trial, a failed or running one at +∞.
  const trial = (state: string, score?: number | null) => ({ state, score, params: {} });
  const study = {
    trials: [trial("complete", 0.8), trial("failed", null), trial("running"), trial("pruned", 0.6)],
  } as unknown as Parameters<typeof observations>[0];
  deepStrictEqual(observations(study).map((o) => o.loss), [-0.8, Infinity, Infinity, -0.6]);
});

/** A smooth synthetic objective over the seed's space, best at lr 2e-4 and adapter size 32. */
function objective(p: Params): number {
  return 1 - 0.5 * Math.abs(Math.log10(p.lr as number) - Math.log10(2e-4)) -
    0.1 * Math.abs(Math.log2(p["adapter-dim"] as number) - 5);
}
const goodRegion = (p: Params) =>
  (p.lr as number) >= 1e-4 && (p.lr as number) <= 4e-4 && p["adapter-dim"] === 32;

function study(sampler: "tpe" | "random", seed: number, n: number) {
  const history: Observation[] = [];
  const params: Params[] = [];
  let best = -Infinity, hits = 0;
  for (let i = 0; i < n; i++) {
    const rng = new Rng(seed, `suggest ${i}`);
    const p = sampler === "tpe"
      ? tpeSuggest(SEED_HEAD_SPACE, history, rng, { startup: 10 })
      : randomParams(SEED_HEAD_SPACE, rng);
    const score = objective(p);
    history.push({ params: p, loss: -score });
    params.push(p);
    best = Math.max(best, score);
    if (goodRegion(p)) hits++;
  }
  return { best, hits, params };
}

Deno.test("TPE reaches the good region more often than random search, deterministically", () => {
  const seeds = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const tpe = seeds.map((s) => study("tpe", s, 40));
  const random = seeds.map((s) => study("random", s, 40));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const hits = { tpe: mean(tpe.map((r) => r.hits)), random: mean(random.map((r) => r.hits)) };
  const best = { tpe: mean(tpe.map((r) => r.best)), random: mean(random.map((r) => r.best)) };
  // 40 trials, the first 10 random: the good region holds 5% of the prior's mass.
  ok(hits.tpe > 2 * hits.random, `trials in the good region: ${JSON.stringify(hits)}`);
  ok(best.tpe > best.random, `mean best score: ${JSON.stringify(best)}`);
  // The same seed and history give the same suggestions; the startup trials are random draws.
  deepStrictEqual(study("tpe", 3, 15).params, study("tpe", 3, 15).params);
  deepStrictEqual(study("tpe", 3, 10).params, study("random", 3, 10).params);
  for (const p of tpe[0].params) {
    ok([8, 16, 32, 64, 128, 256].includes(p["adapter-dim"] as number));
    ok((p.lr as number) >= 1e-6 && (p.lr as number) <= 1e-3);
    ok(Number.isInteger(p.seed) && (p.seed as number) >= 1 && (p.seed as number) <= 2000);
  }
});

Deno.test("successive halving: which trials stop at which rung", () => {
  deepStrictEqual(rungEpochs(1, 3, 3), [0.1111, 0.3333, 1]);
  deepStrictEqual(rungEpochs(3, 3, 1), [3]);
  throws(() => rungEpochs(1, 1, 3), /eta must be > 1/);
  ok(promotes(0.5, [], 3));
  ok(!promotes(0.4, [0.5], 3));
  ok(promotes(0.5, [0.5], 3), "a tie goes on");
  ok(!promotes(NaN, [], 3));
  // Trials one after another, each with its scores at rungs 0 and 1 (rung 2 is the end).
  const scores: Record<string, number[]> = {
    t1: [0.5, 0.6], // first at both rungs: goes on
    t2: [0.4, 0.9], // rung 0: 1 of 2 kept, 0.5 is better: stops at 0
    t3: [0.6, 0.55], // rung 0: best of 3; rung 1: 1 of 2 kept, 0.6 better: stops at 1
    t4: [0.45, 0.9], // rung 0: 1 of 4 kept, two better: stops at 0
    t5: [0.55, 0.9], // rung 0: 1 of 5 kept, 0.6 better: stops at 0
    t6: [0.7, 0.65], // rung 0: 2 of 6 kept, best; rung 1: 1 of 3, best: goes on
    t7: [0.7, 0.65], // rung 0: 2 of 7, ties 0.7; rung 1: 1 of 4, ties 0.65: goes on
    t8: [0.65, 0.7], // rung 0: 2 of 8, 0.7 and 0.7 better: stops at 0
  };
  const sh = new SuccessiveHalving(3);
  const stoppedAt: Record<string, number | null> = {};
  for (const [t, s] of Object.entries(scores)) {
    stoppedAt[t] = null;
    for (let rung = 0; rung < s.length; rung++) {
      sh.record(t, rung, s[rung]);
      if (!sh.decide(t, rung)) {
        stoppedAt[t] = rung;
        break;
      }
    }
  }
  deepStrictEqual(stoppedAt, { t1: null, t2: 0, t3: 1, t4: 0, t5: 0, t6: null, t7: null, t8: 0 });
  // A decision taken stays, whatever scores come later (a trial run again keeps it).
  sh.record("t9", 0, 0.99);
  deepStrictEqual(sh.decide("t2", 0), false);
  // Trials evaluated together all join the rung before any is judged: alone, the first of two
  // would go on; together only the better does.
  const pass = new SuccessiveHalving(3);
  pass.record("a", 0, 0.3);
  pass.record("b", 0, 0.5);
  deepStrictEqual([pass.decide("a", 0), pass.decide("b", 0)], [false, true]);
  const logged = new SuccessiveHalving(3);
  logged.record("x", 0, 0.1);
  logged.setDecision("x", 0, true);
  logged.record("y", 0, 0.9);
  deepStrictEqual(logged.decide("x", 0), true, "a logged decision is kept");
  const failed = new SuccessiveHalving(3);
  failed.record("diverged", 0, 0.9);
  failed.decide("diverged", 0);
  failed.record("good", 0, 0.5);
  failed.forget("diverged");
  deepStrictEqual(failed.decide("good", 0), true, "a failed trial's score judges no one");
});

Deno.test("space files: the forms, and errors naming the file and the key", () => {
  const s = parseSpace(
    JSON.stringify({
      "adapter-dim": { choice: [8, 64] },
      lr: { loguniform: [1e-5, 1e-2] },
      l2: { quniform: [0, 1, 0.25] },
      seed: { randint: [1, 5] },
      model: "lp",
    }),
    "space.json",
    "head",
  );
  deepStrictEqual(
    describeSpace(s),
    "adapter-dim ∈ {8, 64}, lr ~ logU(1e-5, 0.01), l2 ~ qU(0, 1, 0.25), seed ∈ 1..5, model = lp",
  );
  const rng = new Rng(1);
  for (let i = 0; i < 50; i++) {
    const p = randomParams(s, rng);
    ok((p.lr as number) >= 1e-5 && (p.lr as number) <= 1e-2);
    ok([0, 0.25, 0.5, 0.75, 1].includes(p.l2 as number), `l2 ${p.l2}`);
    ok([1, 2, 3, 4, 5].includes(p.seed as number));
  }
  const bad = (json: string, re: RegExp, target: "head" | "bert" = "head") =>
    throws(
      () => parseSpace(json, "s.json", target),
      (e) => e instanceof InputError && e.message.startsWith("s.json") && re.test(e.message),
    );
  bad(`{"lr": `, /not JSON/);
  bad(`[1]`, /a JSON object/);
  bad(`{"dropout": 0.1}`, /"dropout": not a hyperparameter of a head \(one of adapter-dim/);
  bad(`{"adapter-dim": 8}`, /not a hyperparameter of BERT/, "bert");
  bad(`{"lr": {"normal": [0, 1]}}`, /unknown distribution "normal"/);
  bad(`{"lr": {"loguniform": [0, 1]}}`, /bounds must be > 0/);
  bad(`{"lr": {"uniform": [1, 0]}}`, /low bound 1 must be below/);
  bad(`{"adapter-dim": {"uniform": [8, 64]}}`, /takes integers/);
  bad(`{"model": {"choice": ["ap", "gpt"]}}`, /takes ap, lp, avg, got "gpt"/);
  bad(`{}`, /empty/);
});

Deno.test("study log: two workers' files merged; a line cut short is dropped, others named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "search_log" });
  const line = (r: Record<string, unknown>) => JSON.stringify(r) + "\n";
  const head = { type: "study", version: 1, settings: { task: "sst2" } };
  const start = (trial: string, worker: string, time: string, attempt = 1) => ({
    type: "start",
    trial,
    worker,
    time,
    number: Number(trial.slice(-1)),
    params: { lr: 0.001 },
    pass: trial,
    dir: `trials/${trial}`,
    attempt,
  });
  const ev = (trial: string, rung: number, score: number) => ({
    type: "eval",
    trial,
    rung,
    epoch: rung + 1,
    score,
    metrics: { accuracy: score },
    goOn: true,
    seconds: 1,
  });
  const end = (trial: string, state: string, score: number) => ({
    type: "end",
    trial,
    state,
    score,
    seconds: 2,
  });
  await Deno.writeTextFile(
    `${dir}/trials-a.jsonl`,
    [
      line({ ...head, worker: "a" }),
      line(start("a-1", "a", "2024-01-01T00:00:00Z")),
      line(ev("a-1", 0, 0.5)),
      line(end("a-1", "complete", 0.5)),
      line(start("a-2", "a", "2024-01-01T00:00:03Z")),
      line(ev("a-2", 0, 0.2)),
      // rerun after an interruption: its evaluations start over
      line(start("a-2", "a", "2024-01-01T00:00:05Z", 2)),
      line(ev("a-2", 0, 0.4)),
      '{"type":"eval","trial":"a-2","ru', // cut short by a kill
    ].join(""),
  );
  await Deno.writeTextFile(
    `${dir}/trials-b.jsonl`,
    [
      line({ ...head, worker: "b" }),
      line(start("b-1", "b", "2024-01-01T00:00:01Z")),
      line(ev("b-1", 0, 0.3)),
      line({ ...end("b-1", "pruned", 0.3) }),
    ].join(""),
  );
  const s = await readStudy(dir);
  deepStrictEqual(s.logs, ["trials-a.jsonl", "trials-b.jsonl"]);
  deepStrictEqual(s.headers.map((h) => h.worker), ["a", "b"]);
  deepStrictEqual(
    s.trials.map((t) => [t.id, t.state, t.attempt, t.evals.map((e) => e.score)]),
    [["a-1", "complete", 1, [0.5]], ["b-1", "pruned", 1, [0.3]], ["a-2", "running", 2, [0.4]]],
  );
  // A bad line other than the last is an error naming the file and line.
  throws(
    () => parseLog(`${line(head)}not json\n${line(head)}`, "x.jsonl"),
    (e) => e instanceof InputError && /^x\.jsonl:2: not JSON/.test(e.message),
  );
  throws(() => parseLog(line({ type: "bogus" }), "x.jsonl"), /x\.jsonl:1: not a study record/);
  // Opening a worker's log cuts the cut-short line off (its worker holds the lock).
  const a = await WorkerLog.open(dir, { worker: "a" });
  try {
    ok((await Deno.readTextFile(`${dir}/trials-a.jsonl`)).endsWith("\n"));
    await rejects(() => WorkerLog.open(dir, { worker: "a" }), /being written by another process/);
  } finally {
    a.release();
  }
  // Without a name: the host's; while it is held, an error naming the holder and the fixes,
  // never silently another name (a run after a kill would fork the study).
  const w1 = await WorkerLog.open(dir);
  try {
    await rejects(() => WorkerLog.open(dir), (e) => {
      ok(e instanceof LockedError, String(e));
      const m = (e as Error).message;
      ok(m.includes(`worker ${w1.worker} (the default worker name`), m);
      ok(m.includes(String(Deno.pid)), `names the holder: ${m}`);
      ok(/--break-lock/.test(m) && /--worker NAME/.test(m), `names the fixes: ${m}`);
      return true;
    });
    await rejects(() => Deno.stat(`${dir}/trials-${w1.worker}-2.jsonl`), Deno.errors.NotFound);
  } finally {
    w1.release();
  }
  await rejects(() => WorkerLog.open(dir, { worker: "../x" }), /a worker name is letters/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("runSearch on tiny stores: halving stops heads at their rung; two workers; resume", async () => {
  const dir = await Deno.makeTempDir({ prefix: "search_run" });
  const { train, dev } = await searchStores(dir);
  const out = `${dir}/study`;
  const base = {
    task: "sst2",
    target: "head" as const,
    out,
    head: { trainH5: train, devH5: dev, epochs: 3 },
    startup: 2,
    silent: true,
  };
  // Worker a: 3 trials, one at a time; worker b: 2 more, trained together in one pass.
  const ra = await runSearch({ ...base, worker: "a", trials: 3 });
  deepStrictEqual([ra.ran, ra.worker, ra.study.trials.length], [3, "a", 3]);
  const rb = await runSearch({ ...base, worker: "b", trials: 5, trialsPerPass: 2 });
  deepStrictEqual(rb.ran, 2);
  const s = await readStudy(out);
  deepStrictEqual(s.logs, ["trials-a.jsonl", "trials-b.jsonl"]);
  deepStrictEqual(s.trials.map((t) => t.id), ["a-0001", "a-0002", "a-0003", "b-0001", "b-0002"]);
  deepStrictEqual(s.trials.filter((t) => t.worker === "b").map((t) => t.pass), [
    "b-0001",
    "b-0001",
  ]);
  // Rungs at 1/3, 1 and 3 epochs of 6 steps: a pruned head trained exactly to its rung.
  const steps = [2, 6, 18];
  for (const t of s.trials) {
    ok(t.state === "complete" || t.state === "pruned", `${t.id} ${t.state}`);
    const results = JSON.parse(await Deno.readTextFile(`${out}/${t.dir}/results.json`));
    const last = t.evals.at(-1)!;
    deepStrictEqual(results.steps, steps[last.rung], t.id);
    deepStrictEqual(t.state === "pruned", last.goOn === false, t.id);
    deepStrictEqual(t.score, last.score);
  }
  ok(s.trials.some((t) => t.state === "pruned"), "some trial was stopped early");
  // An interrupted trial of worker a (its start logged, a line cut short), then a rerun: only
  // that trial runs again, and nothing new starts (--trials 6 counts it).
  await Deno.writeTextFile(
    `${out}/trials-a.jsonl`,
    JSON.stringify({
      type: "start",
      trial: "a-0004",
      number: 4,
      params: { "adapter-dim": 8, lr: 5e-4, seed: 7 },
      pass: "a-0004",
      dir: "trials/a-0004",
      attempt: 1,
      worker: "a",
      time: new Date().toISOString(),
    }) + '\n{"type":"eval","tr',
    { append: true },
  );
  const again = await runSearch({ ...base, worker: "a", trials: 6 });
  deepStrictEqual(again.ran, 1);
  const s2 = await readStudy(out);
  deepStrictEqual(s2.trials.length, 6);
  const resumed = s2.trials.find((t) => t.id === "a-0004")!;
  deepStrictEqual([resumed.attempt, resumed.state !== "running"], [2, true]);
  const log = await Deno.readTextFile(`${out}/trials-a.jsonl`);
  for (const id of ["a-0001", "a-0002", "a-0003"]) {
    deepStrictEqual(log.split(`"type":"start","trial":"${id}"`).length, 2, `${id} ran once`);
  }
  const best = JSON.parse(await Deno.readTextFile(`${out}/best.json`));
  deepStrictEqual(best.trial, again.best!.id);
  ok(s2.trials.every((t) => t.state !== "complete" || t.score! <= best.score));
  // Nothing more to do: a rerun with the same budget runs nothing.
  deepStrictEqual((await runSearch({ ...base, worker: "a", trials: 6 })).ran, 0);
  // A trial whose loss diverges fails, and the study goes on; a pass with one is split up.
  const diverging = await runSearch({
    ...base,
    out: `${dir}/diverging`,
    space: {
      lr: { kind: "choice", options: [1e-3, 1e30] },
      "adapter-dim": { kind: "fixed", value: 8 },
    },
    sampler: "random",
    trials: 6,
    trialsPerPass: 3,
  });
  const states = diverging.study.trials.map((t) => [t.params.lr, t.state]);
  ok(states.some(([lr]) => lr === 1e30), JSON.stringify(states));
  for (const [lr, state] of states) deepStrictEqual(state, lr === 1e30 ? "failed" : state, `${lr}`);
  ok(
    diverging.study.trials.filter((t) => t.state === "failed")
      .every((t) => /loss is (NaN|Infinity)/.test(t.end!.error!)),
  );
  ok(states.some(([, st]) => st === "complete"), `the others go on: ${JSON.stringify(states)}`);
  // A time budget already spent starts nothing.
  deepStrictEqual((await runSearch({ ...base, out: `${dir}/timed`, minutes: 0 })).ran, 0);
  // Other settings: refused, naming them.
  await rejects(
    () => runSearch({ ...base, worker: "c", trials: 7, eta: 2 }),
    (e) => e instanceof InputError && /other settings .*eta: 3 → 2/.test(e.message),
  );
  await Deno.remove(dir, { recursive: true });
});
