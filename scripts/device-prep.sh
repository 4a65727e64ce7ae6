#!/usr/bin/env bash
# The project's copy of ../shared/tools/device-prep.sh. It differs in one thing: the bench's
# onnxruntime-web peer (scripts/bench/ort.ts imports "onnxruntime-web/webgpu") travels too, as
# onnxruntime's own ESM bundle beside the entry bundles (.device/ort/, mapped by the import map)
# with its WebAssembly xz-compressed (25 MB → 3.4 MB; unpacked by run.sh), so `gpu_check`'s `ort`
# section runs on the GPU machine. transformers.js's old onnxruntime builds stay stubbed.
#
# Packs what a lent GPU machine needs to run this project's Deno scripts, into .device/ at the
# project root (kept out of git through .git/info/exclude). The GPU machine has no network, so
# everything travels: Deno itself (compressed), Debian's Vulkan/EGL loaders, and each entry
# script bundled with its npm dependencies by `deno bundle` (one self-contained .js each).
#
#   usage (from the project root):  sh scripts/device-prep.sh scripts/bench.ts [more.ts ...]
#   then on the device tool:        command: "bash .device/run.sh bench.js --your --flags"
#                                   carry:   [".device"]
# run.sh prints the GPU, the WebGPU adapter Deno sees, then runs the bundle; anything the
# script writes under $OUT comes back. The bundle runs with --no-config, so an entry script
# must not rely on deno.json at run time. Keep .device under the 64 MiB carry limit.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
deno_bin=$(command -v deno || true)
[ -n "$deno_bin" ] || { echo "device-prep: no deno on PATH" >&2; exit 2; }
mkdir -p .device/gl
rm -f .device/deno .device/ort/*.wasm   # unpacked copies from a local try of run.sh must not travel
grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
ver=$("$deno_bin" --version | head -1)
if [ ! -s .device/deno.xz ] || [ "$(cat .device/deno.version 2>/dev/null)" != "$ver" ]; then
  echo "device-prep: compressing $ver (about a minute, once)"
  xz -T2 -6 -c "$(readlink -f "$deno_bin")" > .device/deno.xz
  echo "$ver" > .device/deno.version
fi
if ! ls .device/gl/*.deb >/dev/null 2>&1; then
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  mkdir -p /tmp/amd64/partial
  apt-get $o update >/dev/null
  (cd .device/gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)
fi
# onnxruntime-node and -web (pulled in by transformers.js's tensor module, never used for tokenizing) ship
# native .node files and a webpack bundle that needs __filename: leave them out and map them to a stub at run time.
cat > .device/ort_stub.js <<'STUB'
export const env = { wasm: {}, webgpu: {} };
export const InferenceSession = { create() { throw new Error("onnxruntime is not available in a device bundle"); } };
export const Tensor = class {};
export default { env, InferenceSession, Tensor };
STUB
# The bench's peer: onnxruntime-web 1.23.2's WebGPU build (the version deno.json pins), which
# loads its .wasm beside itself (new URL(..., import.meta.url)).
ort_dist=$("$deno_bin" eval --no-lock 'import.meta.main; const u = import.meta.resolve("npm:onnxruntime-web@1.23.2/webgpu"); console.log(new URL(".", u).pathname)' 2>/dev/null || true)
[ -d "$ort_dist" ] || ort_dist=$(ls -d node_modules/.deno/onnxruntime-web@1.23.2/node_modules/onnxruntime-web/dist 2>/dev/null || true)
[ -d "$ort_dist" ] || { echo "device-prep: onnxruntime-web 1.23.2 not found: run 'deno install' first" >&2; exit 2; }
mkdir -p .device/ort
cp "$ort_dist/ort.webgpu.bundle.min.mjs" "$ort_dist/ort-wasm-simd-threaded.asyncify.mjs" .device/ort/
if [ ! -s .device/ort/ort-wasm-simd-threaded.asyncify.wasm.xz ]; then
  xz -T2 -6 -c "$ort_dist/ort-wasm-simd-threaded.asyncify.wasm" > .device/ort/ort-wasm-simd-threaded.asyncify.wasm.xz
fi
rm -f .device/ort/ort-wasm-simd-threaded.asyncify.wasm
echo '{"imports": {"onnxruntime-node": "./ort_stub.js", "onnxruntime-web": "./ort_stub.js", "onnxruntime-web/webgpu": "./ort/ort.webgpu.bundle.min.mjs"}}' > .device/import_map.json
for entry in "$@"; do
  name=$(basename "${entry%.ts}").js
  "$deno_bin" bundle --platform deno --external onnxruntime-node --external onnxruntime-web -o ".device/$name" "$entry"
done
cat > .device/run.sh <<'RUN'
#!/usr/bin/env bash
# Runs on the GPU machine: unpack Deno and the Vulkan loaders, show the adapter, run a bundle.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
deno="$here/deno"
if [ ! -x "$deno" ]; then
  if command -v xz >/dev/null; then xz -dc "$here/deno.xz" > "$deno"
  else python3 -c "import lzma,sys,shutil; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" "$here/deno.xz" "$deno"; fi
  chmod +x "$deno"
fi
wasm="$here/ort/ort-wasm-simd-threaded.asyncify.wasm"
if [ ! -s "$wasm" ] && [ -s "$wasm.xz" ]; then
  if command -v xz >/dev/null; then xz -dc "$wasm.xz" > "$wasm"
  else python3 -c "import lzma,sys,shutil; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" "$wasm.xz" "$wasm"; fi
fi
if ! ldconfig -p | grep -q libvulkan.so.1; then
  for f in "$here"/gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd VK_ICD_FILENAMES=$icd
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp} DENO_NO_UPDATE_CHECK=1
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader || true
"$deno" eval 'const a = await navigator.gpu.requestAdapter({powerPreference: "high-performance"}); const i = a?.info; console.log("webgpu adapter:", i ? [i.vendor, i.architecture, i.device, i.description].join(" | ") : "none")'
bundle=$1; shift
exec "$deno" run -A --no-config --import-map "$here/import_map.json" "$here/$bundle" "$@"
RUN
chmod +x .device/run.sh
du -sh .device
