/**
 * The peer every section compares against: TensorFlow.js on its WebGPU backend, on the same
 * adapter, in the same process. Importing the backend registers "webgpu"; {@linkcode tfWebgpu}
 * selects it once and {@linkcode tfSync} waits for its queue the way `Gpu.sync()` waits for ours.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";

export { tf };

/** The parts of TF.js's WebgpuBackend that a completion wait needs (internal API, 4.22). */
interface WebgpuBackendInternals {
  device?: GPUDevice;
  commandEncoder?: GPUCommandEncoder | null;
  endComputePassEncoder?(): void;
  submitQueue?(): void;
  adapterInfo?: { vendor?: string; architecture?: string; description?: string };
}

let ready: Promise<string> | null = null;

/** Switches TF.js to its "webgpu" backend (once) and returns a description of its adapter. */
export function tfWebgpu(): Promise<string> {
  ready ??= (async () => {
    if (!(await tf.setBackend("webgpu"))) throw new Error(`TF.js: the "webgpu" backend failed`);
    await tf.ready();
    // TF.js keeps only vendor and architecture; it asked navigator.gpu for the high-performance
    // adapter, as kernels/device.ts does, so the same request names the adapter it got.
    const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
    const info = (tf.backend() as unknown as WebgpuBackendInternals).adapterInfo;
    return adapter?.info.description || [info?.vendor, info?.architecture].join(" ");
  })();
  return ready;
}

/**
 * Waits until TF.js's webgpu backend has finished everything recorded so far: submits its
 * pending command encoder and awaits the queue, without reading anything back. Falls back to
 * reading `t` when the backend's internals are not the expected ones.
 */
export async function tfSync(t: tf.Tensor): Promise<void> {
  const be = tf.backend() as unknown as WebgpuBackendInternals;
  if (be.device && be.submitQueue && be.endComputePassEncoder && "commandEncoder" in be) {
    if (be.commandEncoder) {
      be.endComputePassEncoder();
      be.submitQueue();
    }
    await be.device.queue.onSubmittedWorkDone();
  } else {
    await t.data();
  }
}
