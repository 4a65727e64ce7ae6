// The seed's three searches as presets (`--space NAME`): their values against a table written from
// the seed's code (file @ commit beside each), and what naming one sets on the command line.
import { deepStrictEqual, rejects } from "node:assert/strict";
import { defaultSpace, SEED_SPACES } from "./space.ts";
import { searchSpace } from "../../scripts/search.ts";

Deno.test("the seed's searches, value for value", () => {
  deepStrictEqual(Object.keys(SEED_SPACES), ["seed-ap-glue", "seed-ap-hypersearch", "seed-bert"]);
  // code/torch/models/ap_glue/__main__hyperopt.py @ b9b8061: adapter_dims = [2**x for x in
  // range(3,9)], hp.uniform('learning_rate', 1e-6, 1e-3), hp.uniformint("seed",1,2000),
  // max_evals=8 * 60 * 60 / 60.
  const g = SEED_SPACES["seed-ap-glue"];
  deepStrictEqual(g.space["adapter-dim"], { kind: "choice", options: [8, 16, 32, 64, 128, 256] });
  deepStrictEqual(g.space.lr, { kind: "uniform", lo: 1e-6, hi: 1e-3 });
  deepStrictEqual(g.space.seed, { kind: "quniform", lo: 1, hi: 2000, q: 1 });
  deepStrictEqual([g.target, g.trials, g.shard], ["head", (8 * 60 * 60) / 60, undefined]);
  // code/torch/models/ap_hypersearch/{__main__,args}.py @ b8178e7: hp.randint('seed', 1000),
  // hp.uniform('lr', low=args.lr_low (0e-5), high=args.lr_high (3e-5)), max_evals=200, --shard
  // 0.10; common/trainers/H5_search_trainer.py shards AP_QQP, AP_QNLI, AP_MNLI, AP_SST, AP_MSR.
  const h = SEED_SPACES["seed-ap-hypersearch"];
  deepStrictEqual(h.space, {
    lr: { kind: "uniform", lo: 0, hi: 3e-5 },
    seed: { kind: "randint", lo: 0, hi: 999 },
  });
  deepStrictEqual([h.target, h.trials, h.shard?.fraction], ["head", 200, 0.1]);
  deepStrictEqual([...h.shard!.tasks].sort(), ["mnli", "mrpc", "qnli", "qqp", "sst2"]);
  // code/torch/models/hypersearch/{__main__,args}.py @ 884216e: the same lr and seed,
  // max_evals=100; common/trainers/bert_search_trainer.py shards QQP, QNLI, MNLI.
  const b = SEED_SPACES["seed-bert"];
  deepStrictEqual(b.space, h.space);
  deepStrictEqual([b.target, b.trials, b.shard?.fraction], ["bert", 100, 0.1]);
  deepStrictEqual([...b.shard!.tasks].sort(), ["mnli", "qnli", "qqp"]);
  // Defaults: ap_glue's for heads (no adapter for lp/avg), the seed's BERT search for BERT.
  deepStrictEqual(defaultSpace("head"), { ...g.space });
  deepStrictEqual(Object.keys(defaultSpace("head", "lp")), ["lr", "seed"]);
  deepStrictEqual(defaultSpace("bert"), { ...b.space });
});

Deno.test("--space NAME sets the seed's trials and shard where not given", async () => {
  const err = console.error;
  console.error = () => {};
  try {
    const hs = await searchSpace({ space: "seed-ap-hypersearch" }, "qnli", "head", "ap");
    deepStrictEqual([hs.trials, hs.trainFraction], [200, 0.1]);
    deepStrictEqual(hs.space, { ...SEED_SPACES["seed-ap-hypersearch"].space });
    // RTE was searched on all its rows; flags given win; --minutes replaces the trial count.
    const rte = await searchSpace({ space: "seed-ap-hypersearch" }, "rte", "head", "ap");
    deepStrictEqual([rte.trials, rte.trainFraction], [200, undefined]);
    const given = await searchSpace(
      { space: "seed-ap-glue", trials: 7, "train-fraction": 0.5 },
      "sst2",
      "head",
      "ap",
    );
    deepStrictEqual([given.trials, given.trainFraction], [7, 0.5]);
    const timed = await searchSpace({ space: "seed-ap-glue", minutes: 5 }, "sst2", "head", "ap");
    deepStrictEqual(timed.trials, undefined);
    // BERT trials have no shard here.
    const bert = await searchSpace({ space: "seed-bert" }, "qqp", "bert", "bert");
    deepStrictEqual([bert.trials, bert.trainFraction], [100, undefined]);
    // No --space: the default space at our budget.
    deepStrictEqual(await searchSpace({}, "sst2", "head", "ap"), {
      trials: undefined,
      trainFraction: undefined,
    });
    deepStrictEqual(
      await searchSpace({ trials: 5, "train-fraction": 0.5 }, "qqp", "head", "ap"),
      { trials: 5, trainFraction: 0.5 },
    );
    await rejects(
      () => searchSpace({ space: "seed-bert" }, "sst2", "head", "ap"),
      /--space seed-bert is the seed's search of BERT .*use seed-ap-glue or seed-ap-hypersearch/,
    );
    await rejects(
      () => searchSpace({ space: "seed-ap" }, "sst2", "head", "ap"),
      /--space seed-ap: not one of the seed's searches/,
    );
  } finally {
    console.error = err;
  }
});
