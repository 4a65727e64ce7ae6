/**
 * The seed's command lines (BERTVision's `code/torch`, run as `python -m models.X ...` from that
 * folder), parsed as its argparse parsers parse them: each module's flags as its `args.py` of the
 * published era defines them (commits dfdafad, 2021-02-07, and 0c7e25c, 2021-02-11; the file and
 * commit are named beside each module), with argparse's rules — unique prefixes of long flags
 * (`--batch` is `--batch-size`), `--flag=value`, the last of a repeated flag wins, `choices`,
 * `type=int`/`float`, `required=True`. What each value means here is scripts/seed.ts's job.
 *
 * Checked by tests/seed_test.ts (the 18 commands of the seed's README, as written there, and
 * every refusal).
 * @module
 */
import { UsageError } from "./_flags.ts";

/** One argparse argument of a seed module. */
export interface SeedArg {
  /** As declared, e.g. "--batch-size", "--num_labels". */
  flag: string;
  /** argparse `type`: int, float, str; "flag" is `action='store_true'`. */
  type: "int" | "float" | "str" | "flag";
  /** argparse `default` (absent: None, or False for a "flag"). */
  default?: number | string;
  choices?: readonly string[];
  required?: boolean;
}

/** What a seed module trains and the parser it uses. */
export interface SeedModule {
  /** `models.sst`, as `python -m` names it. */
  module: string;
  /** Our task. */
  task: string;
  /** "bert": fine-tunes BERT; "ap"/"lp": trains an adapter-pooler/learned-pooling head on stores. */
  stage: "bert" | "ap" | "lp";
  /** Where its parser is defined (the `get_args` its `__main__.py` imports), with the commit. */
  argsFile: string;
  /** Its `__main__.py`'s `dataset_map` keys; null where it overwrites `args.dataset` itself. */
  datasets: readonly string[] | null;
  /** Labels the module's model has (checked against `--num-labels` and its spellings). */
  labels: number;
  /** Its parser's arguments beyond models/args.py's {@linkcode BASE_ARGS}. */
  args: readonly SeedArg[];
  /** What the seed's own code does with this command that differs from its README's promise. */
  note?: string;
}

const DEVICE: SeedArg = { flag: "--device", type: "str" };
const SAVE: SeedArg = { flag: "--save-path", type: "str", default: "model_checkpoints" };
const WARMUP: SeedArg = { flag: "--warmup-proportion", type: "float", default: 0.1 };
const MULTI: SeedArg[] = [
  { flag: "--is-multilabel", type: "flag" },
  // `parser.add_argument('--is-binary', dest='is-multilabel', action='store_true')`: as written
  // it sets the same thing as --is-multilabel.
  { flag: "--is-binary", type: "flag" },
];
const MODEL: SeedArg = { flag: "--model", type: "str", required: true };

/** code/torch/models/args.py @ dfdafad: the flags every module's parser starts from. */
export const BASE_ARGS: readonly SeedArg[] = [
  { flag: "--epochs", type: "int", default: 1 },
  { flag: "--batch-size", type: "int", default: 16 },
  { flag: "--lr", type: "float", default: 3e-5 },
  { flag: "--num-workers", type: "int", default: 0 },
  { flag: "--l2", type: "float", default: 0.01 },
  { flag: "--seed", type: "int", default: 1 },
  { flag: "--patience", type: "int", default: 3 },
  { flag: "--log-every", type: "int", default: 10 },
  { flag: "--data-dir", type: "str", default: "../BERTVision-data/datasets" },
];

/** models/sst/args.py @ dfdafad (also imported by models.qnli, models.qqpairs, models.wnli). */
const SST_ARGS: SeedArg[] = [
  MODEL,
  DEVICE,
  { flag: "--dataset", type: "str", default: "SST" },
  { flag: "--model-name", type: "str", default: "SST" },
  ...MULTI,
  SAVE,
  WARMUP,
];

/** The BERT modules' parsers of models/{msr,rte,cola,mnli,stsb}/args.py @ dfdafad. */
function bertArgs(dataset: string, modelName: string, numLabels?: number, multi = true) {
  return [
    MODEL,
    DEVICE,
    { flag: "--dataset", type: "str", default: dataset },
    { flag: "--model-name", type: "str", default: modelName },
    ...(numLabels === undefined
      ? []
      : [{ flag: "--num-labels", type: "int", default: numLabels } as SeedArg]),
    ...(multi ? MULTI : []),
    SAVE,
    WARMUP,
  ] as SeedArg[];
}

/** The head modules' parsers of models/ap_X/args.py @ dfdafad: `--dataset` with one choice. */
function apArgs(dataset: string, modelName: string, extra: SeedArg[]): SeedArg[] {
  return [
    MODEL,
    DEVICE,
    { flag: "--dataset", type: "str", default: dataset, choices: [dataset] },
    { flag: "--model-name", type: "str", default: modelName },
    ...extra,
    SAVE,
    ...MULTI,
    WARMUP,
  ];
}

/**
 * Every module the seed's README runs (and its siblings of the same era), with its parser.
 * `argsFile` names the parser its `__main__.py` imports at dfdafad (models.qnli, models.qqpairs
 * and models.wnli import models/sst/args.py and then set `args.dataset` themselves).
 */
export const SEED_MODULES: readonly SeedModule[] = [
  {
    module: "models.bert",
    task: "squad",
    stage: "bert",
    argsFile: "code/torch/models/bert/args.py @ dfdafad",
    datasets: ["SQuAD"],
    labels: 2,
    args: [
      MODEL,
      DEVICE,
      { flag: "--dataset", type: "str", default: "SQuAD", choices: ["SQuAD"] },
      // The checkpoint: `BertForQuestionAnswering.from_pretrained(args.model_name)`.
      { flag: "--model-name", type: "str", default: "bert-base-uncased" },
      SAVE,
      WARMUP,
    ],
  },
  {
    module: "models.adapter_pooler",
    task: "squad",
    stage: "ap",
    argsFile: "code/torch/models/adapter_pooler/args.py @ dfdafad",
    datasets: ["SQuADH5"],
    labels: 2,
    args: [
      MODEL,
      DEVICE,
      { flag: "--dataset", type: "str", default: "SQuADH5", choices: ["SQuADH5"] },
      { flag: "--model-name", type: "str", default: "AP" },
      SAVE,
      { flag: "--max-seq-length", type: "int", default: 384 },
      WARMUP,
    ],
  },
  {
    module: "models.learned_pooling",
    task: "squad",
    stage: "lp",
    // Its __main__.py imports models.adapter_pooler.args; its own args.py is not used.
    argsFile: "code/torch/models/adapter_pooler/args.py @ dfdafad",
    datasets: ["SQuADH5"],
    labels: 2,
    args: [
      MODEL,
      DEVICE,
      { flag: "--dataset", type: "str", default: "SQuADH5", choices: ["SQuADH5"] },
      { flag: "--model-name", type: "str", default: "AP" },
      SAVE,
      { flag: "--max-seq-length", type: "int", default: 384 },
      WARMUP,
    ],
  },
  {
    module: "models.sst",
    task: "sst2",
    stage: "bert",
    argsFile: "code/torch/models/sst/args.py @ dfdafad",
    datasets: ["SST"],
    labels: 2,
    args: SST_ARGS,
  },
  {
    module: "models.ap_sst",
    task: "sst2",
    stage: "ap",
    argsFile: "code/torch/models/ap_sst/args.py @ dfdafad",
    datasets: ["SSTH5"],
    labels: 2,
    args: apArgs("SSTH5", "ap_sst", [{ flag: "--num-labels", type: "int", default: 2 }]),
  },
  {
    module: "models.msr",
    task: "mrpc",
    stage: "bert",
    argsFile: "code/torch/models/msr/args.py @ dfdafad",
    datasets: null,
    labels: 2,
    args: bertArgs("MSR", "MSR"),
  },
  {
    module: "models.ap_msr",
    task: "mrpc",
    stage: "ap",
    argsFile: "code/torch/models/ap_msr/args.py @ dfdafad",
    datasets: ["MSRH5"],
    labels: 2,
    args: apArgs("MSRH5", "ap_msr", [{ flag: "--num-labels", type: "int", default: 2 }]),
  },
  {
    module: "models.rte",
    task: "rte",
    stage: "bert",
    argsFile: "code/torch/models/rte/args.py @ dfdafad",
    datasets: null,
    labels: 2,
    args: bertArgs("RTE", "RTE", 2),
  },
  {
    module: "models.ap_rte",
    task: "rte",
    stage: "ap",
    argsFile: "code/torch/models/ap_rte/args.py @ dfdafad",
    datasets: ["RTEH5"],
    labels: 2,
    args: apArgs("RTEH5", "ap_rte", [{ flag: "--num-labels", type: "int", default: 2 }]),
  },
  {
    module: "models.qnli",
    task: "qnli",
    stage: "bert",
    argsFile: "code/torch/models/sst/args.py @ dfdafad (imported by models/qnli/__main__.py)",
    datasets: null,
    labels: 2,
    args: SST_ARGS,
  },
  {
    module: "models.ap_qnli",
    task: "qnli",
    stage: "ap",
    argsFile: "code/torch/models/ap_qnli/args.py @ dfdafad, 0c7e25c (--n_layers ... added)",
    datasets: ["QNLIH5"],
    labels: 2,
    args: apArgs("QNLIH5", "ap_qnli", [
      // 0c7e25c: `SST_AP(n_layers=args.n_layers, n_tokens=args.n_tokens, ...)`.
      { flag: "--n_layers", type: "int", default: 25 },
      { flag: "--n_tokens", type: "int", default: 100 },
      { flag: "--n_features", type: "int", default: 1024 },
      { flag: "--n_labels", type: "int", default: 2 },
    ]),
  },
  {
    module: "models.qqpairs",
    task: "qqp",
    stage: "bert",
    argsFile: "code/torch/models/sst/args.py @ dfdafad (imported by models/qqpairs/__main__.py)",
    datasets: null,
    labels: 2,
    args: SST_ARGS,
  },
  {
    module: "models.ap_qqpairs",
    task: "qqp",
    stage: "ap",
    argsFile: "code/torch/models/ap_qqpairs/args.py @ dfdafad",
    // args.py allows only QQPairs; its __main__.py's dataset_map has only QNLIH5, so the seed's
    // own run of this README line stops at 'Unrecognized dataset'. The module trains a head.
    datasets: ["QQPairs"],
    labels: 2,
    args: [
      MODEL,
      DEVICE,
      { flag: "--dataset", type: "str", default: "QQPairs", choices: ["QQPairs"] },
      { flag: "--model-name", type: "str", default: "ap_qqpairs" },
      SAVE,
      ...MULTI,
      WARMUP,
    ],
    note: "the seed's models/ap_qqpairs/__main__.py @ dfdafad maps only QNLIH5 in its " +
      "dataset_map, so this line fails there with 'Unrecognized dataset'; the module trains a " +
      "QQP head, which is what runs here",
  },
  {
    module: "models.stsb",
    task: "stsb",
    stage: "bert",
    argsFile: "code/torch/models/stsb/args.py @ dfdafad",
    datasets: null,
    labels: 1,
    args: bertArgs("RTE", "RTE", 1, false),
  },
  {
    module: "models.ap_stsb",
    task: "stsb",
    stage: "ap",
    argsFile: "code/torch/models/ap_stsb/args.py @ dfdafad",
    datasets: ["STSBH5"],
    labels: 1,
    args: [
      MODEL,
      DEVICE,
      { flag: "--max-seq-length", type: "int", default: 70 },
      { flag: "--num-labels", type: "int", default: 1 },
      { flag: "--dataset", type: "str", default: "STSBH5", choices: ["STSBH5"] },
      { flag: "--model-name", type: "str", default: "ap_stsb" },
      SAVE,
      ...MULTI,
      WARMUP,
    ],
  },
  {
    module: "models.cola",
    task: "cola",
    stage: "bert",
    argsFile: "code/torch/models/cola/args.py @ dfdafad",
    datasets: null,
    labels: 2,
    args: bertArgs("COLA", "COLA", 2),
  },
  {
    module: "models.ap_cola",
    task: "cola",
    stage: "ap",
    argsFile: "code/torch/models/ap_cola/args.py @ dfdafad",
    datasets: ["COLAH5"],
    labels: 2,
    args: apArgs("COLAH5", "ap_cola", [
      { flag: "--max-seq-length", type: "int", default: 64 },
      { flag: "--num_labels", type: "int", default: 2 },
    ]),
  },
  {
    module: "models.mnli",
    task: "mnli",
    stage: "bert",
    argsFile: "code/torch/models/mnli/args.py @ dfdafad",
    datasets: null,
    labels: 3,
    args: bertArgs("MNLI", "MNLI", 3),
  },
  {
    module: "models.ap_mnli",
    task: "mnli",
    stage: "ap",
    argsFile: "code/torch/models/ap_mnli/args.py @ dfdafad",
    datasets: ["MNLIH5"],
    labels: 3,
    args: apArgs("MNLIH5", "ap_mnli", [
      { flag: "--num-labels", type: "int", default: 3 },
      { flag: "--max-seq-length", type: "int", default: 100 },
    ]),
  },
  {
    module: "models.wnli",
    task: "wnli",
    stage: "bert",
    argsFile: "code/torch/models/sst/args.py @ dfdafad (imported by models/wnli/__main__.py)",
    datasets: null,
    labels: 2,
    args: SST_ARGS,
  },
];

/** A parsed seed command: the module and every argument's value (given or argparse's default). */
export interface SeedCommand {
  module: SeedModule;
  /** By flag as declared (`--batch-size`): the value, given or default (undefined: None). */
  values: Record<string, number | string | boolean | undefined>;
  /** The flags given on the command line (as declared). */
  given: Set<string>;
  /** The value of each given flag as written (`1e-5`, not 0.00001). */
  written: Record<string, string>;
}

/** The words of a pasted command: one quoted string is split at whitespace. */
export function seedWords(args: string[]): string[] {
  const words = args.length === 1 && /\s/.test(args[0]) ? args[0].trim().split(/\s+/) : [...args];
  // A Windows prompt pasted with the command (`C:\BERTVision\code\torch>python -m ...`).
  if (words.length && /^[A-Za-z]:\\.*>/.test(words[0])) {
    const rest = words[0].slice(words[0].indexOf(">") + 1);
    words.splice(0, 1, ...(rest ? [rest] : []));
  }
  return words;
}

/**
 * Parses the seed's command line (`python -m models.X ...`, `python3`/`py`/`python.exe` alike, or
 * from `-m` or the module on) as the module's argparse parser does; refusals are
 * {@linkcode UsageError}s naming the flag and the module.
 */
export function parseSeedCommand(args: string[]): SeedCommand {
  const words = seedWords(args);
  let i = 0;
  if (/^(python[0-9.]*|py)(\.exe)?$/i.test(words[i] ?? "")) i++;
  if (words[i] === "-m") i++;
  const name = words[i++];
  if (name === undefined) {
    throw new UsageError(
      `give the seed's command, e.g. python -m models.sst --dataset SST --model SST --lr 1e-5`,
    );
  }
  const module = SEED_MODULES.find((m) => m.module === name);
  if (!module && /^models\.(ap_glue|bert_glue|ap_hypersearch|hypersearch)$/.test(name)) {
    throw new UsageError(
      `${name}: a module the seed added after its README's published numbers (7417f7f, 2f3c7ef: ` +
        `2021-02-15 and later); deno task seed takes that README's commands ` +
        `(models.sst, models.ap_sst, ...); for its searches see deno task search --space`,
    );
  }
  if (!module) {
    throw new UsageError(
      `${name}: not a module of the seed's README (code/torch @ dfdafad); one of ${
        SEED_MODULES.map((m) => m.module).join(", ")
      }`,
    );
  }
  const all = [...BASE_ARGS, ...module.args];
  const where = `(${module.module}, ${module.argsFile})`;
  const values: SeedCommand["values"] = {};
  for (const a of all) values[a.flag] = a.type === "flag" ? false : a.default;
  const given = new Set<string>();
  const written: Record<string, string> = {};
  const isNumber = (s: string) => /^-\d|^-\.\d/.test(s);
  while (i < words.length) {
    const w = words[i++];
    if (!w.startsWith("-") || isNumber(w)) {
      throw new UsageError(`${module.module}: unrecognized arguments: ${w} ${where}`);
    }
    const eq = w.indexOf("=");
    const spelled = eq >= 0 ? w.slice(0, eq) : w;
    // argparse: an exact match, else a unique prefix of a long option.
    let arg = all.find((a) => a.flag === spelled);
    if (!arg && spelled.startsWith("--") && spelled.length > 2) {
      const hits = [...new Set(all.filter((a) => a.flag.startsWith(spelled)))];
      if (hits.length > 1) {
        throw new UsageError(
          `${module.module}: ambiguous option: ${spelled} could match ${
            hits.map((a) => a.flag).join(", ")
          } ${where}`,
        );
      }
      arg = hits[0];
    }
    if (!arg) {
      throw new UsageError(
        `${module.module}: unrecognized arguments: ${spelled}; its parser takes ${
          all.map((a) => a.flag).join(" ")
        } ${where}`,
      );
    }
    if (arg.type === "flag") {
      if (eq >= 0) {
        throw new UsageError(
          `${module.module}: argument ${arg.flag}: ignored explicit argument '${
            w.slice(eq + 1)
          }' ${where}`,
        );
      }
      values[arg.flag] = true;
      given.add(arg.flag);
      continue;
    }
    let raw: string | undefined;
    if (eq >= 0) raw = w.slice(eq + 1);
    else if (i < words.length && (!words[i].startsWith("-") || isNumber(words[i]))) {
      raw = words[i++];
    }
    if (raw === undefined) {
      throw new UsageError(`${module.module}: argument ${arg.flag}: expected one argument`);
    }
    values[arg.flag] = convert(module, arg, raw);
    written[arg.flag] = raw.trim();
    given.add(arg.flag);
  }
  const missing = all.filter((a) => a.required && !given.has(a.flag)).map((a) => a.flag);
  if (missing.length) {
    throw new UsageError(
      `${module.module}: the following arguments are required: ${missing.join(", ")} ${where}`,
    );
  }
  return { module, values, given, written };
}

/** argparse's `type=` and `choices=` for one value; non-finite numbers refused as well. */
function convert(module: SeedModule, arg: SeedArg, raw: string): number | string {
  const bad = (what: string) =>
    new UsageError(
      `${module.module}: argument ${arg.flag}: invalid ${what} value: '${raw}' ` +
        `(${module.argsFile})`,
    );
  let v: number | string = raw;
  if (arg.type === "int") {
    if (!/^\s*[-+]?\d+\s*$/.test(raw)) throw bad("int");
    v = Number(raw);
    if (!Number.isSafeInteger(v)) throw bad("int");
  } else if (arg.type === "float") {
    v = Number(raw);
    // Python's float() also takes inf and nan: valid to argparse, refused here as settings.
    const special = /^\s*[-+]?(inf|infinity|nan)\s*$/i.test(raw);
    if (!special && (raw.trim() === "" || Number.isNaN(v))) throw bad("float");
    if (special || !Number.isFinite(v)) {
      throw new UsageError(
        `${module.module}: argument ${arg.flag}: ${raw} is not a finite number (${module.argsFile})`,
      );
    }
  }
  if (arg.choices && !arg.choices.includes(String(v))) {
    throw new UsageError(
      `${module.module}: argument ${arg.flag}: invalid choice: '${raw}' (choose from ${
        arg.choices.map((c) => `'${c}'`).join(", ")
      }) (${module.argsFile})`,
    );
  }
  return v;
}
