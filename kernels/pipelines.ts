/**
 * Kernels declared in TypeScript and compiled once: the {@linkcode KernelSpec} shape, the WGSL
 * preamble generated from it ({@linkcode kernelSource}: enables, the uniform struct, the storage
 * bindings) and the {@linkcode PipelineCache} keyed by the spec's name, which compiles inside a
 * validation error scope so a bad kernel surfaces as a `DeviceError`.
 *
 * Checked by kernels/device_test.ts (the generated WGSL preamble, the pipeline cache, compile
 * errors surfacing as DeviceErrors).
 * @module
 */
import type { DeviceErrors } from "./device_errors.ts";

/**
 * A binding: a storage buffer, read-only or read-write, or a 2-D float texture read with
 * `textureLoad` (`texture`: the element type is ignored; see kernels/textures.ts).
 */
export type Access = "read" | "rw" | "texture";

/** One scalar field of a kernel's uniform parameter struct. */
export type ParamType = "u32" | "i32" | "f32";

/**
 * Declares a compute kernel once, in TypeScript: its bindings, its uniform struct, its workgroup
 * size and its WGSL body. The runtime prepends the binding and struct declarations, so the body
 * reads `p.<field>` and the buffers by their names.
 */
export interface KernelSpec {
  /** Unique name; with the specialisation key it names the cached pipeline. */
  name: string;
  /** Bindings in order: [name, access, element type (default f32; not for textures)]. */
  bindings: [string, Access, string?][];
  /** Uniform fields in order (all 4 bytes): [name, type]. */
  params: [string, ParamType][];
  /** Workgroup size, e.g. [64] or [16, 16]. */
  workgroupSize: number[];
  /** WGSL code: helpers plus `@compute @workgroup_size(WG) fn main(...)`; `WG` is substituted. */
  body: string;
  /** Set when the body needs `enable f16;`. */
  f16?: boolean;
}

/** A compiled kernel, ready to dispatch. */
export interface Kernel {
  spec: KernelSpec;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

/** The full WGSL of a kernel: enables, params struct, bindings, then the body. */
export function kernelSource(spec: KernelSpec): string {
  const lines: string[] = [];
  if (spec.f16) lines.push("enable f16;");
  if (spec.params.length) {
    lines.push(`struct Params {\n${spec.params.map(([n, t]) => `  ${n}: ${t},`).join("\n")}\n};`);
    lines.push(`@group(0) @binding(${spec.bindings.length}) var<uniform> p: Params;`);
  }
  spec.bindings.forEach(([name, access, type], i) => {
    if (access === "texture") {
      lines.push(`@group(0) @binding(${i}) var ${name}: texture_2d<f32>;`);
      return;
    }
    const mode = access === "read" ? "read" : "read_write";
    lines.push(`@group(0) @binding(${i}) var<storage, ${mode}> ${name}: array<${type ?? "f32"}>;`);
  });
  lines.push(spec.body.replaceAll("WG", spec.workgroupSize.join(", ")));
  return lines.join("\n");
}

/** The compiled pipelines of one device, by kernel name. Owned by a `Gpu`. */
export class PipelineCache {
  readonly #device: GPUDevice;
  readonly #errors: DeviceErrors;
  #kernels = new Map<string, Kernel>();

  /** An empty cache on `device`; compile errors are recorded in `errors`. */
  constructor(device: GPUDevice, errors: DeviceErrors) {
    this.#device = device;
    this.#errors = errors;
  }

  /** Compiles (once) and returns the kernel for `spec`; its name must name the specialisation. */
  kernel(spec: KernelSpec): Kernel {
    let k = this.#kernels.get(spec.name);
    if (k) return k;
    const code = kernelSource(spec);
    const device = this.#device;
    device.pushErrorScope("validation");
    const module = device.createShaderModule({ code, label: spec.name });
    const layout = device.createBindGroupLayout({
      label: spec.name,
      entries: [
        ...spec.bindings.map((b, i): GPUBindGroupLayoutEntry =>
          b[1] === "texture"
            ? {
              binding: i,
              visibility: 4, // GPUShaderStage.COMPUTE
              texture: { sampleType: "unfilterable-float", viewDimension: "2d" },
            }
            : {
              binding: i,
              visibility: 4,
              buffer: {
                type: b[1] === "read" ? "read-only-storage" : "storage",
              } as GPUBufferBindingLayout,
            }
        ),
        ...(spec.params.length
          ? [{
            binding: spec.bindings.length,
            visibility: 4,
            buffer: { type: "uniform" } as GPUBufferBindingLayout,
          }]
          : []),
      ],
    });
    const pipeline = device.createComputePipeline({
      label: spec.name,
      layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: "main" },
    });
    this.#errors.watch(device.popErrorScope(), `kernel '${spec.name}' failed to compile`);
    k = { spec, pipeline, layout };
    this.#kernels.set(spec.name, k);
    return k;
  }

  /** Number of compiled pipelines in the cache. */
  get size(): number {
    return this.#kernels.size;
  }
}
