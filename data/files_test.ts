// data/files.ts: what is and is not a regular file, judged by stat alone (nothing here opens a
// FIFO, so nothing here can hang; tests/fifo_test.ts runs the readers on FIFOs in a child
// process with a kill timer).
import assert from "node:assert/strict";
import { assertRegularFile, regularFileExists } from "./files.ts";
import { InputError } from "./errors.ts";

Deno.test("assertRegularFile: a file or a link to one passes; a FIFO, a device, a directory or nothing is an InputError naming it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/a.txt`, fifo = `${dir}/pipe`, link = `${dir}/link`;
    await Deno.writeTextFile(file, "x");
    await Deno.symlink(file, link);
    assert.ok((await new Deno.Command("mkfifo", { args: [fifo] }).output()).success);
    assertRegularFile(file);
    assertRegularFile(link);
    assert.equal(regularFileExists(link), true);
    assert.equal(regularFileExists(`${dir}/none`), false);
    assert.equal(regularFileExists(`${file}/under-a-file`), false);
    const refused = (f: () => unknown, re: RegExp) =>
      assert.throws(f, (e) => e instanceof InputError && re.test(e.message) && !!e.file);
    refused(() => assertRegularFile(fifo), /\/pipe: a FIFO \(named pipe\), not a regular file/);
    refused(() => regularFileExists(fifo), /\/pipe: a FIFO/);
    await Deno.symlink(fifo, `${dir}/to-pipe`);
    refused(() => assertRegularFile(`${dir}/to-pipe`), /to-pipe: a FIFO \(named pipe\)/);
    refused(() => assertRegularFile("/dev/null"), /^\/dev\/null: a character device, not/);
    refused(
      () => assertRegularFile(dir, { what: "manifest" }),
      /is a directory, not a file; name the manifest itself/,
    );
    refused(() => assertRegularFile(`${dir}/none`), /\/none: no such file/);
    refused(() => assertRegularFile(`${dir}/none`, { notFound: "gone!" }), /^gone!$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
