/**
 * seed: runs a command of the seed's README (BERTVision's `code/torch`, the published era,
 * 2021-02-03..02-11), pasted as written, as the same run here. The command is parsed as its
 * module's argparse parser parses it (scripts/_seed_args.ts: every flag of its `args.py` is
 * accepted), translated to ours, and the translation printed before it runs:
 *
 * ```
 * deno task seed -- python -m models.sst --dataset SST --model SST --num-workers 0 \
 *   --batch-size 16 --epochs 1 --lr 1e-5
 * # seed: python -m models.sst ... is
 * #   deno task glue --task sst2 --model bert --bert bert-base-uncased --data-dir glue_data ...
 * deno task seed --dry-run --h5-dir h5py_embeds -- python -m models.ap_sst --dataset SSTH5 ...
 * ```
 *
 * Our options come before the seed's command: `--dry-run` (the translation's plan, nothing
 * written), `--data-dir DIR` (the GLUE/SQuAD files, default `glue_data`, as `fetch-data --out`
 * writes them; the seed's own `--data-dir` works too), `--h5-dir DIR` (the head's activation
 * stores, default `h5py_embeds`: the seed's three-file stores `TASK_bert_embeds.h5` ... as its
 * `gen_embeds` scripts name them; SQuAD: `train.h5`, `dev.h5` from `deno task capture`),
 * `--h5 FILE` / `--dev-h5 FILE...` (the stores themselves), `--bert M` (instead of the seed's
 * `bert-base-uncased`), `--out DIR`, `--print` (print the translation, run nothing).
 *
 * Every flag of the seed keeps its value, given or its parser's default (`--lr` not given is the
 * seed's 3e-5, not our preset's), and each seed flag that has no effect here is said so in the
 * printout. Settings the seed's code hard-codes (its sequence lengths, optimizer, MSR files) are
 * the task presets' (train/presets.ts, README "The seed's settings"). Checked by
 * tests/seed_test.ts (the 18 commands of the seed's README translate and dry-run; refusals).
 * @module
 */
import { runMain, UsageError } from "./_cli.ts";
import { parseSeedCommand, type SeedCommand } from "./_seed_args.ts";

/** Our options before the seed's command. */
export interface SeedRunOptions {
  dryRun?: boolean;
  dataDir?: string;
  h5Dir?: string;
  h5?: string;
  devH5?: string[];
  bert?: string;
  out?: string;
  print?: boolean;
}

/** A translation: the script and arguments of ours, and notes on what each seed flag became. */
export interface SeedTranslation {
  /** `deno task NAME` (glue or squad). */
  command: "glue" | "squad";
  /** Its arguments, in order. */
  args: string[];
  /** One line per seed flag that has no effect here, or a fact about the seed's run. */
  notes: string[];
  /** The seed's command parsed. */
  seed: SeedCommand;
}

/** The seed's three-file stores of a task, by the file prefix its gen_embeds scripts use. */
const SEED_STORE_PREFIX: Record<string, string> = {
  sst2: "sst",
  mrpc: "msr",
  rte: "rte",
  qnli: "qnli",
  qqp: "qqpairs",
  stsb: "stsb",
  cola: "cola",
  mnli: "mnli",
};

/**
 * Translates a seed command (its words after `deno task seed --`, our options first) to ours.
 * Throws a UsageError naming the flag and the module for what the seed would refuse or what has
 * no equivalent here.
 */
export function translateSeed(words: string[], o: SeedRunOptions = {}): SeedTranslation {
  const seed = parseSeedCommand(words);
  const { module: m, values: v, given, written } = seed;
  // A value as the seed's command wrote it, else its parser's default.
  const num = (f: string) => {
    const x = v[f];
    return written[f] ??
      (typeof x === "number" && x !== 0 && Math.abs(x) < 1e-3 ? x.toExponential() : String(x));
  };
  const notes: string[] = [];
  // --dataset: the module's dataset_map, as its __main__.py checks it.
  const dataset = String(v["--dataset"]);
  if (m.datasets && !m.datasets.includes(dataset)) {
    throw new UsageError(
      `${m.module}: --dataset ${dataset} is not in its dataset_map (${
        m.datasets.join(", ")
      }): the seed raises 'Unrecognized dataset'; ${m.module} trains ${m.task}`,
    );
  }
  if (m.datasets === null && given.has("--dataset")) {
    notes.push(
      `--dataset ${dataset}: set over by ${m.module}'s __main__.py (it trains ${m.task})`,
    );
  }
  if (m.note) notes.push(m.note);
  if (v["--is-multilabel"] || v["--is-binary"]) {
    const f = given.has("--is-binary") ? "--is-binary" : "--is-multilabel";
    throw new UsageError(
      `${m.module}: ${f} makes the seed's run SST-5 (five classes; its parser's --is-binary ` +
        `sets the same flag), which is not a task here (${m.argsFile})`,
    );
  }
  for (const f of ["--num-labels", "--num_labels", "--n_labels"]) {
    if (v[f] !== undefined && v[f] !== m.labels) {
      throw new UsageError(
        `${m.module}: ${f} ${v[f]}: task ${m.task} has ${m.labels} ${
          m.labels === 1 ? "output (regression)" : "labels"
        } here (${m.argsFile})`,
      );
    }
  }
  const command = m.task === "squad" ? "squad" : "glue";
  const args: string[] = command === "squad" ? [] : ["--task", m.task];
  const head = m.stage !== "bert";
  args.push("--model", head ? m.stage : "bert");
  const seedData = given.has("--data-dir") ? String(v["--data-dir"]) : undefined;
  if (o.dataDir !== undefined && seedData !== undefined && o.dataDir !== seedData) {
    throw new UsageError(
      `--data-dir ${o.dataDir} (ours) and the seed's --data-dir ${seedData} differ; give one`,
    );
  }
  const dataDir = o.dataDir ?? seedData ?? "glue_data";
  if (!head) {
    // The checkpoint: models.bert loads args.model_name; the GLUE modules hard-code it.
    const ckpt = m.module === "models.bert" ? String(v["--model-name"]) : "bert-base-uncased";
    args.push("--bert", o.bert ?? ckpt, "--data-dir", dataDir);
    if (m.task === "mrpc") {
      // data/bert_processors/processors.py @ dfdafad (class MSR): trains on
      // msr_paraphrase_train.txt, evaluates on msr_paraphrase_test.txt.
      args.push("--train-file", `${dataDir}/MRPC/msr_paraphrase_train.txt`);
      args.push("--dev-split", "msr_test");
    }
  } else {
    const dir = o.h5Dir ?? "h5py_embeds";
    const prefix = SEED_STORE_PREFIX[m.task];
    const train = o.h5 ?? (prefix ? `${dir}/${prefix}_bert_embeds.h5` : `${dir}/train.h5`);
    const devs = o.devH5 ??
      (m.task === "mnli"
        ? [
          `${dir}/mnli_dev_matched_bert_embeds.h5`,
          `${dir}/mnli_dev_mismatched_bert_embeds.h5`,
        ]
        : [prefix ? `${dir}/${prefix}_dev_bert_embeds.h5` : `${dir}/dev.h5`]);
    args.push("--h5", train, "--dev-h5", ...devs);
    if (m.task === "squad") {
      args.push("--dev-file", `${dataDir}/squad/dev-v2.0.json`);
      notes.push(
        `SQuAD's stores are read from deno task capture's files (the seed's four shuffled ` +
          `SQuAD files are not read here)`,
      );
    }
    if (o.bert !== undefined) args.push("--bert", o.bert);
    for (const f of ["--max-seq-length", "--n_tokens"]) {
      if (v[f] !== undefined) {
        notes.push(
          `${f} ${v[f]}${given.has(f) ? "" : " (its default)"}: the head's tokens (and adapter ` +
            `size) are the store's, which the seed's value must equal`,
        );
      }
    }
    for (const f of ["--n_layers", "--n_features"]) {
      if (given.has(f)) notes.push(`${f} ${v[f]}: the store's layers and features are used`);
    }
  }
  // The training settings: given, or the seed's parser's default (models/args.py @ dfdafad).
  for (const f of ["--batch-size", "--epochs", "--lr", "--l2", "--seed", "--patience"]) {
    args.push(f, num(f));
  }
  args.push("--warmup-proportion", num("--warmup-proportion"));
  const workers = v["--num-workers"];
  if (!head) args.push("--num-workers", num("--num-workers"));
  else if (given.has("--num-workers")) {
    notes.push(
      `--num-workers ${workers}: unused (the seed's DataLoader workers; a head reads its store ` +
        `in this process)`,
    );
  }
  if (!head && given.has("--num-workers")) {
    notes.push(
      `--num-workers ${workers}: tokenization workers here (the seed's DataLoader workers)`,
    );
  }
  const out = o.out ??
    (given.has("--save-path")
      ? `${v["--save-path"]}/${m.task}-${head ? m.stage : "bert"}`
      : undefined);
  if (out !== undefined) args.push("--out", out);
  if (given.has("--model")) {
    notes.push(
      `--model ${v["--model"]}: a name only (the seed's parser requires it; ${
        m.module === "models.bert" ? "--model-name names the checkpoint" : "its run does not use it"
      })`,
    );
  }
  if (given.has("--model-name") && m.module !== "models.bert") {
    notes.push(`--model-name ${v["--model-name"]}: names the seed's save folder only`);
  }
  for (const f of ["--device", "--log-every"]) {
    if (given.has(f)) notes.push(`${f} ${v[f]}: unused here`);
  }
  if (o.dryRun) args.push("--dry-run");
  return { command, args, notes, seed };
}

/** The shell form of a translation: `deno task glue --task sst2 ...`, words quoted as needed. */
export function shellLine(t: SeedTranslation): string {
  const q = (w: string) => /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", `'\\''`)}'`;
  return ["deno", "task", t.command, ...t.args].map(q).join(" ");
}

/** Splits our options (before the seed's command) from the seed's words. */
export function splitArgs(args: string[]): { ours: SeedRunOptions; seed: string[] } {
  const a = args[0] === "--" ? args.slice(1) : [...args];
  const o: SeedRunOptions = {};
  let i = 0;
  const given = new Map<string, string>();
  const value = (flag: string): string => {
    // One value each, as every command's flags (scripts/_flag_parse.ts): a repeat is refused.
    if (given.has(flag)) {
      throw new UsageError(
        `${flag} is given 2 times (${JSON.stringify(given.get(flag))}, ` +
          `${JSON.stringify(a[i + 1])}); it takes one value`,
      );
    }
    given.set(flag, a[i + 1]);
    const v = a[++i];
    if (v === undefined || v.startsWith("-")) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  for (; i < a.length; i++) {
    const w = a[i];
    if (w === "--") {
      i++;
      break;
    }
    if (!w.startsWith("--")) break;
    switch (w) {
      case "--dry-run":
        o.dryRun = true;
        break;
      case "--print":
        o.print = true;
        break;
      case "--data-dir":
        o.dataDir = value(w);
        break;
      case "--h5-dir":
        o.h5Dir = value(w);
        break;
      case "--h5":
        o.h5 = value(w);
        break;
      case "--dev-h5":
        o.devH5 = [value(w)];
        while (
          a[i + 1] !== undefined && !a[i + 1].startsWith("-") && !/^python|^py$/.test(a[i + 1])
        ) {
          o.devH5.push(a[++i]);
        }
        break;
      case "--bert":
        o.bert = value(w);
        break;
      case "--out":
        o.out = value(w);
        break;
      case "--help":
        console.log(USAGE);
        Deno.exit(0);
        break;
      default:
        throw new UsageError(
          `${w}: not an option of deno task seed (--dry-run --print --data-dir --h5-dir --h5 ` +
            `--dev-h5 --bert --out); the seed's command follows them, starting with python -m`,
        );
    }
  }
  return { ours: o, seed: a.slice(i) };
}

const USAGE = `deno task seed [--dry-run] [--print] [--data-dir DIR] [--h5-dir DIR] [--h5 FILE] ` +
  `[--dev-h5 FILE...] [--bert M] [--out DIR] -- python -m models.X <the seed's flags>

Runs a command of the seed's README (BERTVision code/torch, published era) as the same run here,
printing the translation first. README "From the seed's commands".`;

/** Parses, translates, prints and runs one seed command; returns the exit code of ours. */
export async function main(args: string[]): Promise<number> {
  const { ours, seed } = splitArgs(args);
  const t = translateSeed(seed, ours);
  console.log(`seed: ${seed.join(" ")}`);
  console.log(`is:   ${shellLine(t)}`);
  for (const n of t.notes) console.log(`  note: ${n}`);
  if (ours.print) return 0;
  const script = new URL(`./${t.command}.ts`, import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...t.args],
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  return (await child.status).code;
}

if (import.meta.main) {
  let code = 0;
  await runMain("seed", async () => {
    code = await main(Deno.args);
  });
  Deno.exit(code);
}
