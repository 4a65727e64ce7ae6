/**
 * The adapter and its limits: requests a high-performance adapter and a device with the
 * adapter's maximum buffer and workgroup limits (and `shader-f16`, `timestamp-query` when
 * offered), names the adapter, and checks a buffer size against the limits in force.
 *
 * Checked by kernels/device_test.ts (the buffer size check against the device's limit)
 * and by every GPU test, which runs on a device requested here.
 * @module
 */
import { fmtBytes } from "./pool.ts";

/** Thrown when WebGPU is unavailable, with what to install. */
export class NoAdapterError extends Error {
  constructor() {
    super(
      "No WebGPU adapter found. On a GPU server install the vendor's Vulkan driver " +
        "(NVIDIA: the driver's Vulkan ICD, nvidia_icd.json); on a CPU-only Linux machine install " +
        "Mesa's software Vulkan: `apt-get install -y mesa-vulkan-drivers libvulkan1` (adapter " +
        "'llvmpipe'). Check with `vulkaninfo --summary`.",
    );
    this.name = "NoAdapterError";
  }
}

/** What a `Gpu` records about its adapter and device. */
export interface AdapterFacts {
  /** Adapter description, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" or "NVIDIA H100 80GB HBM3". */
  adapterName: string;
  /** Whether the adapter is a software fallback (llvmpipe). */
  isFallback: boolean;
  /** Whether `shader-f16` was enabled. */
  hasF16: boolean;
  /** Whether `timestamp-query` was enabled. */
  hasTimestamps: boolean;
}

/** The name, software-fallback flag and enabled features of `adapter` and its `device`. */
export function adapterFacts(adapter: GPUAdapter, device: GPUDevice): AdapterFacts {
  const info = adapter.info;
  const adapterName = info.description || `${info.vendor} ${info.architecture} ${info.device}`;
  return {
    adapterName,
    isFallback: !!(info as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter ||
      /llvmpipe|swiftshader|lavapipe/i.test(adapterName),
    hasF16: device.features.has("shader-f16"),
    hasTimestamps: device.features.has("timestamp-query"),
  };
}

/**
 * Requests a high-performance adapter and a device with its maximum buffer and workgroup
 * limits, enabling `shader-f16` and `timestamp-query` when offered. Throws
 * {@linkcode NoAdapterError} when there is no adapter.
 */
export async function requestDevice(): Promise<{ adapter: GPUAdapter; device: GPUDevice }> {
  // Mesa warns on stderr when this is unset; the value does not matter for compute.
  if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", "/tmp");
  const gpu = (globalThis.navigator as Navigator & { gpu?: GPU }).gpu;
  const adapter = gpu ? await gpu.requestAdapter({ powerPreference: "high-performance" }) : null;
  if (!adapter) throw new NoAdapterError();
  const want: (keyof GPUSupportedLimits)[] = [
    "maxStorageBufferBindingSize",
    "maxBufferSize",
    "maxStorageBuffersPerShaderStage",
    "maxComputeWorkgroupStorageSize",
    "maxComputeInvocationsPerWorkgroup",
    "maxComputeWorkgroupSizeX",
    "maxComputeWorkgroupSizeY",
    "maxComputeWorkgroupsPerDimension",
  ];
  const requiredLimits: Record<string, number> = {};
  for (const k of want) requiredLimits[k] = adapter.limits[k] as number;
  const features: GPUFeatureName[] = [];
  for (const f of ["shader-f16", "timestamp-query"] as GPUFeatureName[]) {
    if (adapter.features.has(f)) features.push(f);
  }
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures: features });
  return { adapter, device };
}

/**
 * Checks that a buffer of `bytes` can exist under `limits`, before anything is created or
 * dispatched; the error names `what`, the limit and `adapterName`.
 */
export function checkBufferSize(
  limits: GPUSupportedLimits,
  adapterName: string,
  bytes: number,
  what: string,
): void {
  const max = Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize);
  if (bytes > max) {
    throw new RangeError(
      `${what}: needs a buffer of ${fmtBytes(bytes)}, over this device's limit of ` +
        `${fmtBytes(max)} (maxStorageBufferBindingSize on ${adapterName}). ` +
        `Use a smaller batch size or sequence length.`,
    );
  }
}
