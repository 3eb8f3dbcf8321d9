import { z } from 'zod';

const poolName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,23}$/, "must be 1-24 characters: lower-case letters, digits and '-', starting with a letter");
const absolutePath = z.string().regex(/^\//, 'must be an absolute path');
const port = z.number().int().min(1024).max(65535);
const seconds = z.number().positive().max(86_400);

const poolSchema = z
  .object({
    name: poolName,
    golden_image: absolutePath,
    size: z.number().int().min(0).max(64),
    vcpus: z.number().int().min(1).max(64).default(2),
    memory: z.number().int().min(64).max(1_048_576).describe('MiB').default(2048),
    spice_port_base: port.default(5920),
    storage_dir: absolutePath.optional(),
    firmware: z.enum(['bios', 'uefi']).default('bios'),
    video: z.enum(['qxl', 'vga', 'virtio']).default('qxl'),
    /** Direct kernel boot, for Linux golden images without a boot loader. */
    kernel: absolutePath.optional(),
    initrd: absolutePath.optional(),
    cmdline: z.string().max(4096).optional(),
    boot_timeout: seconds.optional(),
  })
  .strict()
  .refine((p) => p.kernel !== undefined || (p.initrd === undefined && p.cmdline === undefined), {
    message: 'initrd and cmdline need kernel',
    path: ['kernel'],
  });

export const configSchema = z
  .object({
    supervisor: z
      .object({
        state_dir: absolutePath.default('/var/lib/tabula'),
        /** "kvm" on real hardware; "qemu" is software emulation (slow, works everywhere). */
        hypervisor: z.enum(['kvm', 'qemu']).default('kvm'),
        boot_timeout: seconds.default(180),
        max_parallel_boots: z.number().int().min(1).max(64).default(2),
        heartbeat: seconds.default(5),
        spice_listen: z.string().ip({ version: 'v4' }).default('127.0.0.1'),
      })
      .strict()
      .default({}),
    pool: z.array(poolSchema).default([]),
  })
  .strict();

export type RawConfig = z.infer<typeof configSchema>;
