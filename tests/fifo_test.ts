// FIFOs and devices where a user-provided file is expected (issue 19 item 6): each reader
// refuses them with an InputError naming the path, before opening it (opening a FIFO for reading
// blocks until a writer comes, maybe never; /dev/zero never ends). The readers run in a child
// process (tests/_fifo_child.ts) with a kill timer, so that a reader that opens one fails this
// test, naming the probe, instead of hanging the suite.
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname;

/** Generous: the child only loads modules and refuses; a reader that opens a FIFO never ends. */
const KILL_AFTER_MS = 120_000;

Deno.test("FIFOs, links to them and devices are refused by every reader, naming them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fifo_test_" });
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", `${ROOT}deno.json`, `${ROOT}tests/_fifo_child.ts`, dir],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill("SIGKILL");
    }, KILL_AFTER_MS);
    const out = await child.output();
    clearTimeout(timer);
    const text = new TextDecoder().decode(out.stdout);
    const started = [...text.matchAll(/^@@start (.*)$/gm)].map((m) => m[1]);
    const ended = [...text.matchAll(/^@@end (.*)$/gm)].map((m) =>
      JSON.parse(m[1]) as { name: string; message: string }
    );
    const hung = started.filter((n) => !ended.some((e) => e.name === n));
    assert.ok(
      !killed && out.success,
      `${killed ? `killed after ${KILL_AFTER_MS} ms; ` : ""}never ended: ${
        hung.join(", ") || "(none)"
      }\n${new TextDecoder().decode(out.stderr).slice(-2000)}`,
    );
    assert.equal(ended.length, 17, text);
    const want: Record<string, RegExp> = {
      "--h5 fifo.h5": /fifo\.h5: a FIFO \(named pipe\), not a regular file/,
      "--h5 link.h5 (a symbolic link to a FIFO)": /link\.h5: a FIFO \(named pipe\), not a regular/,
      "--h5 list.txt (a manifest naming a FIFO)":
        /list\.txt:\d+: names .*fifo\.h5: a FIFO \(named pipe\), not a regular file/,
      "--h5 pipe.txt (a manifest that is a FIFO)":
        /pipe\.txt: cannot read this manifest of shard files \(a FIFO \(named pipe\), not a/,
      "a store whose sidecar is a FIFO": /store\.h5\.state\.json: a FIFO \(named pipe\), not a/,
      "--out fifo (capture, merge-shards)": /out\.h5: a FIFO \(named pipe\), not a regular file/,
      "results.json (report)": /res\/results\.json: a FIFO \(named pipe\), not a regular file/,
      "results.json (a head's marker)": /res\/results\.json: a FIFO \(named pipe\), not a regular/,
      "tokenizer.json": /tokjson\/tokenizer\.json: a FIFO \(named pipe\), not a regular file/,
      "vocab.txt": /vocab\/vocab\.txt: a FIFO \(named pipe\), not a regular file/,
      "config.json": /model\/config\.json: a FIFO \(named pipe\), not a regular file/,
      "model.safetensors": /model2\/model\.safetensors: a FIFO \(named pipe\), not a regular/,
      "GLUE data (--data)": /dev\.tsv: a FIFO \(named pipe\), not a regular file/,
      "/dev/zero as an input file": /\/dev\/zero: a character device, not a regular file/,
      "a logits file's rows record (ensemble)":
        /head\/dev_logits\.rows\.json: a FIFO \(named pipe\), not a regular file/,
      "a cached download (fetch-data)": /downloads\/SST-2\.zip: a FIFO \(named pipe\), not a/,
      "a cached download's hash (fetch-data)": /downloads\/SST-2\.zip: a FIFO \(named pipe\)/,
    };
    for (const e of ended) {
      assert.match(e.message, /^InputError: /, e.name);
      assert.match(e.message, want[e.name], e.name);
      assert.ok(e.message.includes(dir) || e.name.includes("/dev/zero"), e.message);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
