/**
 * Small generated datasets in the real distribution formats (GLUE TSV, SQuAD 2.0 JSON), for
 * tests without `../shared` and for the demo: a task a tiny BERT can learn in minutes on a CPU.
 *
 * - SST-2 style: sentences of common words where the label is carried by sentiment words
 *   (good/great/best/love vs bad/not/no), order and filler random.
 * - SQuAD style: short contexts stating facts ("the film was made in 1987 by anna ."), with
 *   questions whose answers are spans, and unanswerable questions about an absent year.
 * - Multi-label: sentences mentioning any subset of three topics, labelled with that subset.
 * - MNLI style: premise/hypothesis pairs in MNLI's column layout, with matched and mismatched
 *   dev files (other genres, longer premises), the label carried by a cue word.
 * @module
 */
import { Rng } from "./rng.ts";

const FILLER = ("the of and to a in is it that was for on are with as this from at one have " +
  "film movie story people world life time day work thing man year").split(" ");
const POSITIVE = ["good", "great", "best", "love", "well"];
const NEGATIVE = ["bad", "not", "no", "little", "old"];

function sentence(rng: Rng, label: number): string {
  const n = 4 + (rng.nextU32() % 8);
  const words = Array.from({ length: n }, () => FILLER[rng.nextU32() % FILLER.length]);
  const cue = (label ? POSITIVE : NEGATIVE)[rng.nextU32() % 5];
  words.splice(rng.nextU32() % (n + 1), 0, cue);
  return words.join(" ");
}

/**
 * Writes `dir/SST-2/train.tsv` and `dir/SST-2/dev.tsv` (header `sentence\tlabel`), balanced
 * labels, from `seed`.
 */
export async function writeSyntheticSst2(
  dir: string,
  opts: { train: number; dev: number; seed: number },
): Promise<void> {
  await Deno.mkdir(`${dir}/SST-2`, { recursive: true });
  const rng = new Rng(opts.seed, "sst2");
  for (const [split, n] of [["train", opts.train], ["dev", opts.dev]] as const) {
    const lines = ["sentence\tlabel"];
    for (let i = 0; i < n; i++) {
      const label = i % 2;
      lines.push(`${sentence(rng, label)} \t${label}`);
    }
    await Deno.writeTextFile(`${dir}/SST-2/${split}.tsv`, lines.join("\n") + "\n");
  }
}

const NAMES = ["anna", "paul", "mary", "john", "lucy", "mark", "rose", "tom"];
const THINGS = ["film", "story", "movie", "book", "song", "house"];

/**
 * Every word {@linkcode writeSyntheticSquad} writes (names, things, years 1900–2019, the fixed
 * wording and the filler), for a vocabulary in which each is one piece.
 */
export function syntheticSquadWords(): string[] {
  const fixed = "the was made in by it is a good who when ? .".split(" ");
  const years = Array.from({ length: 120 }, (_, i) => String(1900 + i));
  return [...new Set([...FILLER, ...NAMES, ...THINGS, ...years, ...fixed])];
}

/**
 * Writes a SQuAD 2.0 JSON file `dir/squad/<name>.json` with `articles` short contexts and two
 * questions each: "who made the X ?" (answerable) and "when was the X made ?", answerable when
 * the context states a year (even articles) and unanswerable otherwise (odd articles).
 */
export async function writeSyntheticSquad(
  dir: string,
  name: string,
  opts: { articles: number; seed: number },
): Promise<string> {
  const rng = new Rng(opts.seed, "squad");
  const data = [];
  let qid = 0;
  for (let a = 0; a < opts.articles; a++) {
    const thing = THINGS[a % THINGS.length];
    const who = NAMES[rng.nextU32() % NAMES.length];
    const year = String(1900 + (rng.nextU32() % 120));
    const dated = a % 2 === 0;
    // A filler prefix of varying length moves the answers around: no positional shortcut.
    const prefix = Array.from({ length: rng.nextU32() % 6 }, () => FILLER[rng.nextU32() % 12]);
    const fact = dated
      ? `the ${thing} was made in ${year} by ${who} .`
      : `the ${thing} was made by ${who} .`;
    const context = [...prefix, fact, `it is a good ${thing} .`].join(" ");
    const at = (w: string) => ` ${context} `.indexOf(` ${w} `);
    const qas = [
      {
        id: `q${qid++}`,
        question: `who made the ${thing} ?`,
        answers: [{ text: who, answer_start: at(who) }],
        is_impossible: false,
      },
      {
        id: `q${qid++}`,
        question: `when was the ${thing} made ?`,
        answers: dated ? [{ text: year, answer_start: at(year) }] : [],
        is_impossible: !dated,
      },
    ];
    data.push({ title: `article_${a}`, paragraphs: [{ context, qas }] });
  }
  await Deno.mkdir(`${dir}/squad`, { recursive: true });
  const path = `${dir}/squad/${name}.json`;
  await Deno.writeTextFile(path, JSON.stringify({ version: "v2.0", data }));
  return path;
}

/**
 * The topics of {@linkcode writeSyntheticTopics}, with the cue words that signal each (words of
 * both the real vocabulary and the built-in one, so each is one piece).
 */
export const TOPICS: Record<string, string[]> = {
  film: ["film", "movie"],
  nature: ["water", "world"],
  people: ["man", "people"],
};

/**
 * Writes a multi-label GLUE-format task `dir/TOPICS/{train,dev}.tsv` (header `sentence\tlabels`):
 * each sentence mentions any subset of the {@linkcode TOPICS} (none, one, two or all three) by
 * one cue word each among filler; its label cell lists those topics separated by commas.
 */
export async function writeSyntheticTopics(
  dir: string,
  opts: { train: number; dev: number; seed: number },
): Promise<void> {
  await Deno.mkdir(`${dir}/TOPICS`, { recursive: true });
  const rng = new Rng(opts.seed, "topics");
  const names = Object.keys(TOPICS);
  for (const [split, n] of [["train", opts.train], ["dev", opts.dev]] as const) {
    const lines = ["sentence\tlabels"];
    for (let i = 0; i < n; i++) {
      const mask = i % 8; // every subset equally often
      const on = names.filter((_, k) => mask & (1 << k));
      const words = Array.from(
        { length: 3 + (rng.nextU32() % 5) },
        () => FILLER[rng.nextU32() % 12],
      );
      for (const t of on) {
        const cues = TOPICS[t];
        words.splice(rng.nextU32() % (words.length + 1), 0, cues[rng.nextU32() % cues.length]);
      }
      lines.push(`${words.join(" ")}\t${on.join(",")}`);
    }
    await Deno.writeTextFile(`${dir}/TOPICS/${split}.tsv`, lines.join("\n") + "\n");
  }
}

const MNLI_CUES: Record<string, string[]> = {
  contradiction: NEGATIVE,
  entailment: POSITIVE,
  neutral: ["may", "could", "would", "some", "about"],
};

/**
 * Writes MNLI-format files `dir/MNLI/{train,dev_matched,dev_mismatched}.tsv` from `seed`: train
 * with MNLI's 12 columns, the two dev files with its 16 (five annotator labels, then
 * `gold_label`). The premise is filler words; the hypothesis carries its label by one cue word
 * (entailment: good/great/..., contradiction: bad/not/..., neutral: may/could/...), the labels in
 * turn. `dev_matched` has the training genres; `dev_mismatched` other genres and longer premises,
 * so the two splits differ. `dev` rows each (`mismatched` rows in `dev_mismatched` when given).
 */
export async function writeSyntheticMnli(
  dir: string,
  opts: { train: number; dev: number; mismatched?: number; seed: number },
): Promise<void> {
  await Deno.mkdir(`${dir}/MNLI`, { recursive: true });
  const rng = new Rng(opts.seed, "mnli");
  const labels = Object.keys(MNLI_CUES);
  const words = (n: number) =>
    Array.from({ length: n }, () => FILLER[rng.nextU32() % FILLER.length]);
  const head = "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\t" +
    "sentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2";
  const dev = "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label";
  const splits = [
    ["train", opts.train, ["fiction", "government"], 4, "\tlabel1\tgold_label"],
    ["dev_matched", opts.dev, ["fiction", "government"], 4, dev],
    ["dev_mismatched", opts.mismatched ?? opts.dev, ["letters", "travel"], 9, dev],
  ] as const;
  for (const [split, n, genres, premise, tail] of splits) {
    const lines = [head + tail];
    for (let i = 0; i < n; i++) {
      const label = labels[i % 3];
      const s1 = words(premise + (rng.nextU32() % 4)).join(" ");
      const hyp = words(2 + (rng.nextU32() % 3));
      const cues = MNLI_CUES[label];
      hyp.splice(rng.nextU32() % (hyp.length + 1), 0, cues[rng.nextU32() % cues.length]);
      const s2 = hyp.join(" ");
      const annotators = split === "train" ? [label] : [label, label, label, label, label];
      lines.push(
        [i, 1000 + i, `${1000 + i}e`, genres[i % genres.length], `( ${s1} )`, `( ${s2} )`]
          .concat([`(ROOT ${s1})`, `(ROOT ${s2})`, s1, s2, ...annotators, label]).join("\t"),
      );
    }
    await Deno.writeTextFile(`${dir}/MNLI/${split}.tsv`, lines.join("\n") + "\n");
  }
}
