import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ChecksumError, downloadFile, HttpStatusError, sha256File } from "./download.ts";

/** Deterministic bytes so a spliced resume shows up as a mismatch. */
function payload(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7919 + (i >> 8)) & 255;
  return b;
}

interface Seen {
  ranges: (string | null)[];
  requests: number;
}

/**
 * A loopback server for one payload. `mode` picks the misbehaviour: honour Range, ignore it,
 * drop the connection halfway through the first full response, or lie about the length.
 */
function serve(
  data: Uint8Array<ArrayBuffer>,
  mode: "range" | "ignore-range" | "drop-first" | "404" = "range",
): { url: string; seen: Seen; close: () => Promise<void> } {
  const seen: Seen = { ranges: [], requests: 0 };
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    (req) => {
      seen.requests++;
      const range = req.headers.get("range");
      seen.ranges.push(range);
      if (mode === "404") return new Response("nope", { status: 404 });
      const m = range ? /^bytes=(\d+)-$/.exec(range) : null;
      if (m && mode !== "ignore-range") {
        const start = Number(m[1]);
        if (start >= data.length) return new Response(null, { status: 416 });
        return new Response(data.slice(start), {
          status: 206,
          headers: {
            "content-range": `bytes ${start}-${data.length - 1}/${data.length}`,
            "content-length": String(data.length - start),
          },
        });
      }
      if (mode === "drop-first" && seen.requests === 1) {
        const half = data.slice(0, data.length >> 1);
        const body = new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(half);
          },
          pull(c) {
            c.error(new Error("simulated drop"));
          },
        });
        return new Response(body, { headers: { "content-length": String(data.length) } });
      }
      return new Response(data, { headers: { "content-length": String(data.length) } });
    },
  );
  const { port } = server.addr as Deno.NetAddr;
  return {
    url: `http://127.0.0.1:${port}/file.bin`,
    seen,
    close: async () => {
      ac.abort();
      await server.finished;
    },
  };
}

const hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

Deno.test("downloadFile: full download, size and sha256 checked, then skipped", async () => {
  const data = payload(100_000);
  const s = serve(data);
  const dir = await Deno.makeTempDir();
  try {
    const dest = `${dir}/sub/file.bin`;
    await downloadFile(s.url, dest, { silent: true, expectedSize: data.length, sha256: hex(data) });
    assert.deepEqual(await Deno.readFile(dest), data);
    await assert.rejects(Deno.stat(dest + ".part"), Deno.errors.NotFound);
    assert.equal(await sha256File(dest), hex(data));
    await downloadFile(s.url, dest, { silent: true, expectedSize: data.length });
    assert.equal(s.seen.requests, 1, "an existing complete file must not be fetched again");
  } finally {
    await s.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadFile: resumes from a partial file with a Range request", async () => {
  const data = payload(50_001);
  const s = serve(data);
  const dir = await Deno.makeTempDir();
  try {
    const dest = `${dir}/file.bin`;
    await Deno.writeFile(dest + ".part", data.slice(0, 12_345));
    await downloadFile(s.url, dest, { silent: true });
    assert.deepEqual(s.seen.ranges, ["bytes=12345-"]);
    assert.deepEqual(await Deno.readFile(dest), data);
  } finally {
    await s.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadFile: restarts when the server ignores Range", async () => {
  const data = payload(30_000);
  const s = serve(data, "ignore-range");
  const dir = await Deno.makeTempDir();
  try {
    const dest = `${dir}/file.bin`;
    // Junk in the partial file: a splice instead of a restart would keep it.
    await Deno.writeFile(dest + ".part", new Uint8Array(1000).fill(0xee));
    await downloadFile(s.url, dest, { silent: true });
    assert.equal(s.seen.ranges[0], "bytes=1000-");
    assert.deepEqual(await Deno.readFile(dest), data);
  } finally {
    await s.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadFile: a dropped connection is resumed and the result is byte-identical", async () => {
  const data = payload(200_000);
  const s = serve(data, "drop-first");
  const dir = await Deno.makeTempDir();
  try {
    const dest = `${dir}/file.bin`;
    await downloadFile(s.url, dest, { silent: true, sha256: hex(data) });
    assert.ok(s.seen.requests >= 2, `expected a retry, saw ${s.seen.requests} request(s)`);
    assert.equal(s.seen.ranges[0], null);
    assert.match(s.seen.ranges[1] ?? "", /^bytes=\d+-$/);
    assert.notEqual(s.seen.ranges[1], "bytes=0-");
    assert.deepEqual(await Deno.readFile(dest), data);
  } finally {
    await s.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadFile: size mismatch names the URL and sizes; nothing lands at dest", async () => {
  const data = payload(4096);
  const s = serve(data);
  const dir = await Deno.makeTempDir();
  try {
    const dest = `${dir}/file.bin`;
    await assert.rejects(
      downloadFile(s.url, dest, { silent: true, expectedSize: 5000 }),
      (e: Error) => {
        assert.match(e.message, /4096 bytes but 5000 were expected/);
        assert.ok(e.message.includes(s.url));
        return true;
      },
    );
    await assert.rejects(Deno.stat(dest), Deno.errors.NotFound);
  } finally {
    await s.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadFile: sha256 mismatch names the file and removes the partial", async () => {
  const data = payload(4096);
  const s = serve(data);
  const dir = await Deno.makeTempDir();
  try {
    const dest = `${dir}/file.bin`;
    await assert.rejects(
      downloadFile(s.url, dest, { silent: true, sha256: "0".repeat(64) }),
      new RegExp(`${dest}: sha256 ${hex(data)} \\(4096 bytes\\) does not match`),
    );
    await assert.rejects(Deno.stat(dest), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(dest + ".part"), Deno.errors.NotFound);
  } finally {
    await s.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadFile: 404 is an error naming the URL, not retried", async () => {
  const s = serve(new Uint8Array(0), "404");
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      downloadFile(s.url, `${dir}/x`, { silent: true }),
      (e: Error) =>
        e instanceof HttpStatusError && e.status === 404 &&
        e.message.includes(`GET ${s.url} failed: HTTP 404`),
    );
    assert.equal(s.seen.requests, 1);
  } finally {
    await s.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadFile: without retries a drop keeps the .part and the next run resumes", async () => {
  const data = payload(200_000);
  const s = serve(data, "drop-first");
  const dir = await Deno.makeTempDir();
  try {
    const dest = `${dir}/file.bin`;
    await assert.rejects(
      downloadFile(s.url, dest, { silent: true, retries: 0 }),
      /failed after 1 attempts .* rerun to resume/,
    );
    const kept = (await Deno.stat(dest + ".part")).size;
    assert.ok(kept > 0 && kept < data.length, `kept ${kept} bytes`);
    await downloadFile(s.url, dest, { silent: true });
    assert.equal(s.seen.ranges[1], `bytes=${kept}-`);
    assert.deepEqual(await Deno.readFile(dest), data);
  } finally {
    await s.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadFile: a short file with a hash to check is read and refused naming both hashes and sizes", async () => {
  const data = payload(29);
  const s = serve(data);
  const dir = await Deno.makeTempDir();
  try {
    const dest = `${dir}/file.bin`;
    const want = "a".repeat(64);
    await assert.rejects(
      downloadFile(s.url, dest, { silent: true, expectedSize: 5000, sha256: want }),
      (e: Error) => {
        assert.ok(e instanceof ChecksumError, String(e));
        assert.equal(
          e.message,
          `${dest}: sha256 ${hex(data)} (29 bytes) does not match the expected ${want} ` +
            `(5000 bytes) (downloaded from ${s.url}); the download was deleted`,
        );
        return true;
      },
    );
    assert.equal(s.seen.requests, 1, "refused, not retried");
    await assert.rejects(Deno.stat(dest), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(dest + ".part"), Deno.errors.NotFound);
  } finally {
    await s.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadFile: a server streaming past the expected size is stopped there", async () => {
  let pulls = 0;
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    () =>
      // No Content-Length: 200 chunks of 64 KB (12.8 MB) for a file that must be 1,000 bytes.
      new Response(
        new ReadableStream<Uint8Array>({
          pull(c) {
            if (++pulls > 200) c.close();
            else c.enqueue(new Uint8Array(65536));
          },
        }),
      ),
  );
  const url = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}/f`;
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      downloadFile(url, `${dir}/f`, { silent: true, expectedSize: 1000 }),
      (e: Error) => {
        const m = /sent more than the 1000 bytes announced or expected \(stopped after (\d+)\)/
          .exec(e.message);
        assert.ok(m, e.message);
        // Read up to the first chunk past 1,000 bytes, not the 12.8 MB sent (TCP chunks vary).
        assert.ok(Number(m[1]) < 1 << 20, e.message);
        return true;
      },
    );
    await assert.rejects(Deno.stat(`${dir}/f.part`), Deno.errors.NotFound);
  } finally {
    ac.abort();
    await server.finished;
    await Deno.remove(dir, { recursive: true });
  }
});
