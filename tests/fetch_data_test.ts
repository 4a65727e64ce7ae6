/** fetch-data against a loopback HTTP server serving generated GLUE zips and SQuAD files. */
import assert from "node:assert/strict";
import { crc32, extractZip, formatMrpc, zipEntries } from "../data/fetch.ts";
import { fetchTasks as fetchData, getTask, type GlueTask } from "../tasks/mod.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const MRPC = new URL("../../shared/data/glue/MRPC/", import.meta.url).pathname;
const hasMrpc = await Deno.stat(`${MRPC}msr_paraphrase_train.txt`).then(() => true, () => false);

/** A ZIP archive; entries deflated (or stored when `store`). */
async function makeZip(
  files: Record<string, string>,
  store = false,
): Promise<Uint8Array<ArrayBuffer>> {
  const enc = new TextEncoder();
  const locals: Uint8Array[] = [], centrals: Uint8Array[] = [];
  let offset = 0;
  for (const [name, text] of Object.entries(files)) {
    const data = enc.encode(text) as Uint8Array<ArrayBuffer>, nameB = enc.encode(name);
    const comp = store ? data : new Uint8Array(
      await new Response(
        new Blob([data]).stream().pipeThrough(new CompressionStream("deflate-raw")),
      )
        .arrayBuffer(),
    );
    const crc = crc32(data);
    const local = new Uint8Array(30 + nameB.length + comp.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(8, store ? 0 : 8, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, comp.length, true);
    lv.setUint32(22, data.length, true);
    lv.setUint16(26, nameB.length, true);
    local.set(nameB, 30);
    local.set(comp, 30 + nameB.length);
    const central = new Uint8Array(46 + nameB.length);
    const cv = new DataView(central.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(10, store ? 0 : 8, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, comp.length, true);
    cv.setUint32(24, data.length, true);
    cv.setUint16(28, nameB.length, true);
    cv.setUint32(42, offset, true);
    central.set(nameB, 46);
    locals.push(local);
    centrals.push(central);
    offset += local.length;
  }
  const cdSize = centrals.reduce((s, c) => s + c.length, 0);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, centrals.length, true);
  ev.setUint16(10, centrals.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  const out = new Uint8Array(offset + cdSize + 22);
  let p = 0;
  for (const part of [...locals, ...centrals, eocd]) {
    out.set(part, p);
    p += part.length;
  }
  return out;
}

const SST_DEV = "sentence\tlabel\nit 's a charming journey . \t1\nbleak \t0\n";
const MSR_TRAIN = "\uFEFFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n" +
  "1\t10\t11\tA b.\tA  b .\r\n0\t20\t21\tC.\tD.\r\n1\t30\t31\tE.\tF.\r\n";
const MSR_TEST = "\uFEFFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n1\t40\t41\tG.\tH.\r\n";
const SQUAD_DEV = JSON.stringify({ version: "v2.0", data: [] });

async function serve(): Promise<{ base: string; hits: string[]; close: () => Promise<void> }> {
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
    if (!body) return new Response("not found", { status: 404 });
    return new Response(body, { headers: { "content-length": String(body.length) } });
  });
  return {
    base: `http://127.0.0.1:${await port}`,
    hits,
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
    assert.ok(!(await Deno.stat(`${out}/.downloads`).catch(() => null)), "zip removed");

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

    await fetchData("squad", out, { baseUrl: srv.base, silent: true });
    assert.equal(await Deno.readTextFile(`${out}/squad/dev-v2.0.json`), SQUAD_DEV);

    // rerun: complete tasks are skipped without a request
    const before = srv.hits.length;
    await fetchData("sst2", out, { baseUrl: srv.base, silent: true });
    assert.equal(srv.hits.length, before);

    // the pinned SQuAD checksums catch a wrong file
    await Deno.remove(`${out}/squad`, { recursive: true });
    await assert.rejects(
      fetchData("squad", out, { baseUrl: srv.base, silent: true, verify: true }),
      /train-v2.0.json: server reports 28 bytes but 42123633 were expected/,
    );
    // a zip without the task's files, an unknown task, a 404
    await assert.rejects(
      fetchData("rte", out, { baseUrl: srv.base, silent: true }),
      /RTE.zip: the zip has no RTE\/train.tsv, RTE\/test.tsv/,
    );
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

Deno.test("ZIP reader: entries, CRC check, unsafe paths skipped", async () => {
  const zip = await makeZip({ "A/x.txt": "hello", "../evil.txt": "no", "top.txt": "t" });
  const entries = zipEntries(zip);
  assert.deepEqual(entries.map((e) => [e.name, e.size]), [["A/x.txt", 5], ["../evil.txt", 2], [
    "top.txt",
    1,
  ]]);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/z.zip`, zip);
    const w = await extractZip(`${dir}/z.zip`, `${dir}/o`, "B");
    assert.deepEqual(w, [`${dir}/o/B/x.txt`, `${dir}/o/B/top.txt`]);
    const bad = zip.slice();
    bad[30 + "A/x.txt".length] ^= 0xFF; // corrupt the first entry's data
    await Deno.writeFile(`${dir}/bad.zip`, bad);
    await assert.rejects(extractZip(`${dir}/bad.zip`, `${dir}/o2`, "B"), /bad.zip: A\/x.txt/);
    assert.throws(() => zipEntries(new Uint8Array(100), "n.zip"), /n.zip: not a ZIP file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xCBF43926);
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
