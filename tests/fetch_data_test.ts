/** fetch-data against a loopback HTTP server serving generated GLUE zips and SQuAD files. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fetchSources, formatMrpc, SQUAD_FILES } from "../data/fetch.ts";
import { encodeZip } from "../data/zip.ts";
import { fetchTasks as fetchData, getTask, type GlueTask } from "../tasks/mod.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const MRPC = new URL("../../shared/data/glue/MRPC/", import.meta.url).pathname;
const hasMrpc = await Deno.stat(`${MRPC}msr_paraphrase_train.txt`).then(() => true, () => false);

/** A ZIP archive; entries deflated (or stored when `store`). */
function makeZip(files: Record<string, string>, store = false): Promise<Uint8Array<ArrayBuffer>> {
  return encodeZip(Object.entries(files).map(([name, data]) => ({ name, data, store })));
}

const hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

const SST_DEV = "sentence\tlabel\nit 's a charming journey . \t1\nbleak \t0\n";
const MSR_TRAIN = "\uFEFFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n" +
  "1\t10\t11\tA b.\tA  b .\r\n0\t20\t21\tC.\tD.\r\n1\t30\t31\tE.\tF.\r\n";
const MSR_TEST = "\uFEFFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n1\t40\t41\tG.\tH.\r\n";
const SQUAD_DEV = JSON.stringify({ version: "v2.0", data: [] });

/** The loopback mirror; `files` can be changed between requests (a mirror that changes). */
async function serve(): Promise<{
  base: string;
  hits: string[];
  files: Record<string, Uint8Array<ArrayBuffer>>;
  close: () => Promise<void>;
}> {
  const files: Record<string, Uint8Array<ArrayBuffer>> = {
    "/glue/data/SST-2.zip": await makeZip({
      "SST-2/": "",
      "SST-2/train.tsv": SST_DEV,
      "SST-2/dev.tsv": SST_DEV,
      "SST-2/test.tsv": "index\tsentence\n0\tfine\n",
      "__MACOSX/SST-2/._dev.tsv": "junk",
    }),
    // top folder named differently in the zip, stored (method 0) entries
    "/glue/data/QNLIv2.zip": await makeZip({
      "QNLIv2/train.tsv": "index\tquestion\tsentence\tlabel\n0\tQ?\tS.\tentailment\n",
      "QNLIv2/dev.tsv": "index\tquestion\tsentence\tlabel\n0\tQ?\tS.\tnot_entailment\n",
      "QNLIv2/test.tsv": "index\tquestion\tsentence\n0\tQ?\tS.\n",
    }, true),
    "/glue/data/RTE.zip": await makeZip({ "RTE/dev.tsv": "x" }),
    "/glue/data/mrpc_dev_ids.tsv": new TextEncoder().encode("20\t21\n"),
    "/senteval/senteval_data/msr_paraphrase_train.txt": new TextEncoder().encode(MSR_TRAIN),
    "/senteval/senteval_data/msr_paraphrase_test.txt": new TextEncoder().encode(MSR_TEST),
    "/squad/dev-v2.0.json": new TextEncoder().encode(SQUAD_DEV),
    "/squad/train-v2.0.json": new TextEncoder().encode(SQUAD_DEV),
  };
  const hits: string[] = [];
  const ac = new AbortController();
  let resolvePort: (p: number) => void;
  const port = new Promise<number>((r) => (resolvePort = r));
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: ac.signal,
    onListen: ({ port }) => resolvePort(port),
  }, (req) => {
    const path = new URL(req.url).pathname;
    hits.push(path);
    const body = files[path];
    if (!Object.hasOwn(files, path)) return new Response("not found", { status: 404 });
    return new Response(body, { headers: { "content-length": String(body.length) } });
  });
  return {
    base: `http://127.0.0.1:${await port}`,
    hits,
    files,
    close: async () => {
      ac.abort();
      await server.finished;
    },
  };
}

Deno.test("fetch-data from a loopback mirror: GLUE layout, MRPC rebuilt, SQuAD, resume", async () => {
  const srv = await serve();
  const out = await Deno.makeTempDir();
  try {
    const w = await fetchData("sst2", out, { baseUrl: srv.base, silent: true });
    assert.deepEqual(w, ["train", "dev", "test"].map((s) => `${out}/SST-2/${s}.tsv`));
    assert.equal(await Deno.readTextFile(`${out}/SST-2/dev.tsv`), SST_DEV);
    assert.ok(!(await Deno.stat(`${out}/__MACOSX`).catch(() => null)));
    assert.ok(!(await Deno.stat(`${out}/.downloads/SST-2.zip`).catch(() => null)), "zip removed");
    // No hash is published for the GLUE zips: the first clean download's is recorded.
    const hashes = JSON.parse(await Deno.readTextFile(`${out}/.downloads/hashes.json`));
    assert.equal(hashes["glue/data/SST-2.zip"].sha256, hex(srv.files["/glue/data/SST-2.zip"]));
    assert.equal(hashes["glue/data/SST-2.zip"].size, srv.files["/glue/data/SST-2.zip"].length);

    await fetchData("qnli", out, { baseUrl: srv.base, silent: true });
    assert.match(await Deno.readTextFile(`${out}/QNLI/dev.tsv`), /not_entailment/);

    await fetchData("mrpc", out, { baseUrl: srv.base, silent: true });
    assert.equal(
      await Deno.readTextFile(`${out}/MRPC/dev.tsv`),
      "\uFEFFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t20\t21\tC.\tD.\n",
    );
    assert.equal(
      await Deno.readTextFile(`${out}/MRPC/test.tsv`),
      "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t40\t41\tG.\tH.\n",
    );

    // A pinned file from the mirror: checked against its pin (here the fake file's own).
    const pin = { size: SQUAD_DEV.length, sha256: hex(new TextEncoder().encode(SQUAD_DEV)) };
    await fetchSources(
      [{
        name: "squad",
        source: { type: "pinned", host: "squad", dir: "squad", files: { "dev-v2.0.json": pin } },
      }],
      out,
      { baseUrl: srv.base, silent: true },
    );
    assert.equal(await Deno.readTextFile(`${out}/squad/dev-v2.0.json`), SQUAD_DEV);

    // rerun: complete tasks are skipped without a request
    const before = srv.hits.length;
    await fetchData("sst2", out, { baseUrl: srv.base, silent: true });
    assert.equal(srv.hits.length, before);

    // The published SQuAD checksums stay on with a mirror: a 28-byte fake is refused, naming
    // the file, both hashes and sizes (before, --base-url switched them off and it was kept).
    await Deno.remove(`${out}/squad`, { recursive: true });
    const fake = hex(srv.files["/squad/train-v2.0.json"]);
    const want = SQUAD_FILES["train-v2.0.json"];
    await assert.rejects(
      fetchData("squad", out, { baseUrl: srv.base, silent: true }),
      new RegExp(
        `${out}/squad/train-v2.0.json: sha256 ${fake} \\(28 bytes\\) does not match the ` +
          `expected ${want.sha256} \\(${want.size} bytes\\) \\(downloaded from ` +
          `${srv.base}/squad/train-v2.0.json\\); the download was deleted\\. .*must serve the ` +
          `same bytes`,
      ),
    );
    await assert.rejects(Deno.stat(`${out}/squad/train-v2.0.json`), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(`${out}/squad/train-v2.0.json.part`), Deno.errors.NotFound);
    // a zip without the task's files (deleted, to be downloaded again), an unknown task, a 404
    await assert.rejects(
      fetchData("rte", out, { baseUrl: srv.base, silent: true }),
      /RTE.zip: the zip has no RTE\/train.tsv, RTE\/test.tsv; the file was deleted/,
    );
    await assert.rejects(Deno.stat(`${out}/.downloads/RTE.zip`), Deno.errors.NotFound);
    await assert.rejects(fetchData("squad2", out, { silent: true }), /unknown task "squad2"/);
    await assert.rejects(fetchData("cola", out, { baseUrl: srv.base, silent: true }), /404/);

    // the CLI, with the mirror from the environment
    const cli = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${ROOT}scripts/fetch_data.ts`,
        "--task",
        "sst2",
        "--out",
        `${out}/cli`,
        "--quiet",
      ],
      env: { BERTVISION_DATA_URL: srv.base },
    }).output();
    assert.equal(cli.code, 0, new TextDecoder().decode(cli.stderr));
    assert.equal(await Deno.readTextFile(`${out}/cli/SST-2/dev.tsv`), SST_DEV);
  } finally {
    await srv.close();
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test({
  name: "formatMrpc rebuilds the shared MRPC train/dev byte for byte",
  ignore: !hasMrpc,
  async fn() {
    const f = formatMrpc(
      await Deno.readTextFile(`${MRPC}msr_paraphrase_train.txt`),
      await Deno.readTextFile(`${MRPC}msr_paraphrase_test.txt`),
      await Deno.readTextFile(`${MRPC}dev_ids.tsv`),
    );
    assert.equal(f["train.tsv"], await Deno.readTextFile(`${MRPC}train.tsv`));
    assert.equal(f["dev.tsv"], await Deno.readTextFile(`${MRPC}dev.tsv`));
    assert.equal(f["test.tsv"].split("\n").length - 2, 1725);
  },
});

Deno.test("fetch-data mrpc keeps the labelled MSR test file: the msr_test split, refetched when missing", async () => {
  const srv = await serve();
  const out = await Deno.makeTempDir();
  try {
    const w = await fetchData("mrpc", out, { baseUrl: srv.base, silent: true });
    assert.ok(w.includes(`${out}/MRPC/msr_paraphrase_test.txt`), w.join());
    assert.equal(await Deno.readTextFile(`${out}/MRPC/msr_paraphrase_test.txt`), MSR_TEST);
    // Read as MRPC's msr_test split: labelled, unlike GLUE's test.tsv.
    const mrpc = getTask("mrpc") as GlueTask;
    const ex = await mrpc.readSplit(out, "msr_test");
    assert.deepEqual(ex.map((e) => [e.label, e.textA, e.textB]), [[1, "G.", "H."]]);
    // A directory from before (GLUE's three files only) is completed with it.
    await Deno.remove(`${out}/MRPC/msr_paraphrase_test.txt`);
    const before = srv.hits.length;
    await fetchData("mrpc", out, { baseUrl: srv.base, silent: true });
    assert.ok(srv.hits.slice(before).includes("/senteval/senteval_data/msr_paraphrase_test.txt"));
    assert.equal(await Deno.readTextFile(`${out}/MRPC/msr_paraphrase_test.txt`), MSR_TEST);
    // Complete: a rerun asks for nothing.
    const after = srv.hits.length;
    await fetchData("mrpc", out, { baseUrl: srv.base, silent: true });
    assert.equal(srv.hits.length, after);
  } finally {
    await srv.close();
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("fetch-data: a cached zip that fails to unpack (truncated, CRC, bad directory) is deleted, named, and the next run downloads it again", async () => {
  const srv = await serve();
  const out = await Deno.makeTempDir();
  const good = srv.files["/glue/data/SST-2.zip"];
  const crc = good.slice();
  // SST-2/train.tsv's data: after the empty folder entry's local header (30 + 6 + 2 bytes of
  // empty deflate data) and its own (30 + 15).
  crc[38 + 45 + 3] ^= 0x55;
  const dir = good.slice();
  new DataView(dir.buffer).setUint32(dir.length - 22 + 16, 0x7FFFFFF0, true);
  const cases: [string, Uint8Array<ArrayBuffer>, RegExp][] = [
    ["truncated", good.slice(0, good.length - 40), /not a ZIP file|central directory/],
    ["a CRC error", crc, /SST-2\/train\.tsv: /],
    ["a bad directory offset", dir, /bad central directory offset/],
  ];
  try {
    for (const [what, bytes, why] of cases) {
      srv.files["/glue/data/SST-2.zip"] = bytes;
      const zip = `${out}/.downloads/SST-2.zip`;
      await assert.rejects(
        fetchData("sst2", out, { baseUrl: srv.base, silent: true }),
        (e: Error) => {
          assert.ok(e.message.startsWith(`${zip}: `), `${what}: ${e.message}`);
          assert.match(e.message, why, what);
          assert.match(e.message, /the file was deleted: rerun fetch-data to download it again/);
          return true;
        },
      );
      await assert.rejects(Deno.stat(zip), Deno.errors.NotFound, `${what}: the zip is gone`);
      assert.ok(!(await Deno.stat(`${out}/SST-2`).catch(() => null)), `${what}: nothing unpacked`);
      // The mirror is fixed: the next run asks for the zip again and succeeds.
      srv.files["/glue/data/SST-2.zip"] = good;
      const before = srv.hits.length;
      await fetchData("sst2", out, { baseUrl: srv.base, silent: true });
      assert.deepEqual(srv.hits.slice(before), ["/glue/data/SST-2.zip"], what);
      assert.equal(await Deno.readTextFile(`${out}/SST-2/dev.tsv`), SST_DEV);
      await Deno.remove(`${out}/SST-2`, { recursive: true });
      await Deno.remove(`${out}/.downloads`, { recursive: true });
    }
  } finally {
    await srv.close();
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("fetch-data: a GLUE zip is checked against the sha256 recorded at its first download", async () => {
  const srv = await serve();
  const out = await Deno.makeTempDir();
  try {
    const first = srv.files["/glue/data/SST-2.zip"];
    await fetchData("sst2", out, { baseUrl: srv.base, silent: true });
    await Deno.remove(`${out}/SST-2`, { recursive: true });
    // A mirror that now serves a different (valid) zip is refused, naming both hashes.
    const other = await makeZip({
      "SST-2/train.tsv": SST_DEV,
      "SST-2/dev.tsv": "sentence\tlabel\nplanted\t1\n",
      "SST-2/test.tsv": "index\tsentence\n0\tfine\n",
    });
    srv.files["/glue/data/SST-2.zip"] = other;
    await assert.rejects(
      fetchData("sst2", out, { baseUrl: srv.base, silent: true }),
      new RegExp(
        `${out}/.downloads/SST-2.zip: sha256 ${hex(other)} \\(${other.length} bytes\\) does ` +
          `not match the expected ${hex(first)} \\(${first.length} bytes\\).*recorded at the ` +
          `first download of glue/data/SST-2.zip .* in ${out}/.downloads/hashes.json`,
      ),
    );
    assert.ok(!(await Deno.stat(`${out}/SST-2`).catch(() => null)), "nothing unpacked");
    srv.files["/glue/data/SST-2.zip"] = first;
    await fetchData("sst2", out, { baseUrl: srv.base, silent: true });
    assert.equal(await Deno.readTextFile(`${out}/SST-2/dev.tsv`), SST_DEV);
    // A malformed record is an error naming the file, not a silent default.
    await Deno.remove(`${out}/SST-2`, { recursive: true });
    await Deno.writeTextFile(`${out}/.downloads/hashes.json`, '{"glue/data/SST-2.zip": 1}');
    await assert.rejects(
      fetchData("sst2", out, { baseUrl: srv.base, silent: true }),
      new RegExp(`${out}/.downloads/hashes.json: entry "glue/data/SST-2.zip" is not`),
    );
  } finally {
    await srv.close();
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("fetch-data mrpc: MSR files that cannot be formatted are deleted, named, and downloaded again", async () => {
  const srv = await serve();
  const out = await Deno.makeTempDir();
  const key = "/senteval/senteval_data/msr_paraphrase_train.txt";
  const good = srv.files[key];
  try {
    srv.files[key] = new TextEncoder().encode(MSR_TRAIN.replace("1\t10\t11\t", "1\t10\t"));
    await assert.rejects(
      fetchData("mrpc", out, { baseUrl: srv.base, silent: true }),
      new RegExp(
        `${out}/MRPC/msr_paraphrase_train.txt:2: expected 5 columns; msr_paraphrase_train.txt, ` +
          `msr_paraphrase_test.txt, dev_ids.tsv were deleted from ${out}/MRPC: rerun fetch-data`,
      ),
    );
    await assert.rejects(Deno.stat(`${out}/MRPC/msr_paraphrase_train.txt`), Deno.errors.NotFound);
    srv.files[key] = good;
    await fetchData("mrpc", out, { baseUrl: srv.base, silent: true });
    assert.match(await Deno.readTextFile(`${out}/MRPC/dev.tsv`), /\t20\t21\t/);
    const hashes = JSON.parse(await Deno.readTextFile(`${out}/.downloads/hashes.json`));
    assert.equal(hashes["senteval/senteval_data/msr_paraphrase_train.txt"].sha256, hex(good));
  } finally {
    await srv.close();
    await Deno.remove(out, { recursive: true });
  }
});
