/** The ZIP reader against hostile zips: bombs, truncation, bad directories, CRC errors. */
import assert from "node:assert/strict";
import {
  crc32,
  encodeZip,
  extractZip,
  INFLATE_SLACK,
  zipEntries,
  ZipError,
  type ZipStats,
} from "./zip.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Every file under `dir` (relative paths). */
async function listFiles(dir: string, pre = ""): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(`${dir}/${pre}`)) {
      if (e.isDirectory) out.push(...await listFiles(dir, `${pre}${e.name}/`));
      else out.push(`${pre}${e.name}`);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}

Deno.test("ZIP reader: entries, CRC check, unsafe paths skipped", async () => {
  const zip = await encodeZip([
    { name: "A/x.txt", data: "hello" },
    { name: "../evil.txt", data: "no" },
    { name: "top.txt", data: "t", store: true },
  ]);
  assert.deepEqual(zipEntries(zip).map((e) => [e.name, e.size]), [
    ["A/x.txt", 5],
    ["../evil.txt", 2],
    ["top.txt", 1],
  ]);
  await withDir(async (dir) => {
    await Deno.writeFile(`${dir}/z.zip`, zip);
    const w = await extractZip(`${dir}/z.zip`, `${dir}/o`, "B");
    assert.deepEqual(w, [`${dir}/o/B/x.txt`, `${dir}/o/B/top.txt`]);
    assert.equal(await Deno.readTextFile(`${dir}/o/B/x.txt`), "hello");
    const bad = zip.slice();
    bad[30 + "A/x.txt".length] ^= 0xFF; // corrupt the first entry's data
    await Deno.writeFile(`${dir}/bad.zip`, bad);
    await assert.rejects(extractZip(`${dir}/bad.zip`, `${dir}/o2`, "B"), (e: Error) => {
      assert.ok(e instanceof ZipError, String(e));
      assert.match(e.message, /bad\.zip: A\/x\.txt: .*delete it and download again/);
      return true;
    });
    assert.deepEqual(await listFiles(`${dir}/o2`), [], "a failed entry leaves no file");
  });
  assert.throws(() => zipEntries(new Uint8Array(100), "n.zip"), /n.zip: not a ZIP file/);
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xCBF43926);
});

Deno.test("ZIP reader: a bomb (1,000 bytes declared, 50 MB inflated) is stopped at the declared size", async () => {
  // 50 MB of zeros deflate to about 50 KB; the entry claims 1,000 bytes.
  const bomb = await encodeZip([
    { name: "SST-2/dev.tsv", data: "fine" },
    { name: "SST-2/train.tsv", data: new Uint8Array(50 << 20), declaredSize: 1000 },
  ]);
  assert.ok(bomb.length < 200_000, `${bomb.length} bytes`);
  await withDir(async (dir) => {
    await Deno.writeFile(`${dir}/bomb.zip`, bomb);
    const stats: ZipStats = { inflated: 0, written: 0 };
    await assert.rejects(
      extractZip(`${dir}/bomb.zip`, `${dir}/o`, "SST-2", { stats }),
      /bomb\.zip: SST-2\/train\.tsv: inflates to more than the 1000 bytes its directory declares/,
    );
    // The work done is bounded by the declared size, not by what the data would inflate to:
    // the old reader inflated all 50 MB into memory before it compared sizes.
    assert.ok(stats.inflated > 1000, `inflated ${stats.inflated}`);
    assert.ok(stats.inflated <= 4 + 1000 + INFLATE_SLACK, `inflated ${stats.inflated} bytes`);
    assert.ok(stats.written <= 4 + 1000, `wrote ${stats.written} bytes`);
    assert.deepEqual(await listFiles(`${dir}/o`), ["SST-2/dev.tsv"], "no part file left");
  });
});

Deno.test("ZIP reader: a large honest entry unpacks whole; declared sizes past the cap are refused before any work", async () => {
  const big = new Uint8Array(3 << 20);
  for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xFF;
  const zip = await encodeZip([
    { name: "T/a.bin", data: big },
    { name: "T/b.txt", data: "x".repeat(600) },
  ]);
  await withDir(async (dir) => {
    await Deno.writeFile(`${dir}/z.zip`, zip);
    const stats: ZipStats = { inflated: 0, written: 0 };
    await extractZip(`${dir}/z.zip`, `${dir}/o`, "T", { stats });
    assert.deepEqual(await Deno.readFile(`${dir}/o/T/a.bin`), big);
    assert.equal(stats.written, big.length + 600);
    const capped: ZipStats = { inflated: 0, written: 0 };
    await assert.rejects(
      extractZip(`${dir}/z.zip`, `${dir}/o2`, "T", { maxBytes: 1 << 20, stats: capped }),
      new RegExp(
        `z\\.zip: its entries declare ${big.length + 600} bytes unpacked, more than ` +
          `the cap of ${1 << 20} per zip`,
      ),
    );
    assert.equal(capped.inflated, 0);
  });
});

Deno.test("ZIP reader: truncation at any byte and a bad directory offset name the zip, the fault and the fix", async () => {
  const zip = await encodeZip([
    { name: "D/dev.tsv", data: "sentence\tlabel\nok\t1\n".repeat(20) },
    { name: "D/test.tsv", data: "index\tsentence\n0\tfine\n", store: true },
  ]);
  await withDir(async (dir) => {
    const p = `${dir}/cut.zip`;
    // Every third cut, and every cut inside the central directory and end record.
    const cuts = [...Array(zip.length).keys()].filter((n) => n % 3 === 0 || n > zip.length - 90);
    for (const n of cuts) {
      await Deno.writeFile(p, zip.subarray(0, n));
      await assert.rejects(extractZip(p, `${dir}/o`, "D"), (e: Error) => {
        assert.ok(e instanceof ZipError, `cut at ${n}: ${e}`);
        assert.ok(e.message.startsWith(`${p}: `) && /download again/.test(e.message), e.message);
        return true;
      });
    }
    // The end record's central-directory offset pointed past the file: the old reader said
    // "Offset is outside the bounds of the DataView" and named no file.
    const bad = zip.slice();
    new DataView(bad.buffer).setUint32(bad.length - 22 + 16, 0x7FFFFFF0, true);
    await Deno.writeFile(`${dir}/bad.zip`, bad);
    await assert.rejects(
      extractZip(`${dir}/bad.zip`, `${dir}/o`, "D"),
      new RegExp(`${dir}/bad\\.zip: bad central directory offset: .* delete it and download again`),
    );
    // A central entry whose local offset points past the data.
    const cd = bad.length - 22 - (46 + "D/test.tsv".length);
    const bad2 = zip.slice();
    new DataView(bad2.buffer).setUint32(cd + 42, 0xFFFF, true);
    await Deno.writeFile(`${dir}/bad2.zip`, bad2);
    await assert.rejects(
      extractZip(`${dir}/bad2.zip`, `${dir}/o`, "D"),
      /bad2\.zip: D\/test\.tsv: its data offset 65535 lies outside the file's data/,
    );
  });
});

Deno.test("ZIP reader: an entry name with control characters is quoted in messages", async () => {
  const zip = await encodeZip([{ name: "D/\x1b[31mred", data: "x", declaredSize: 0 }]);
  await withDir(async (dir) => {
    await Deno.writeFile(`${dir}/z.zip`, zip);
    await assert.rejects(extractZip(`${dir}/z.zip`, `${dir}/o`, "D"), (e: Error) => {
      assert.ok(!e.message.includes("\x1b"), e.message);
      assert.ok(e.message.includes(`${dir}/z.zip: "D/\\u001b[31mred": inflates`), e.message);
      return true;
    });
  });
});
