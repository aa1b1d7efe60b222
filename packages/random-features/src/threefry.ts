/**
 * Threefry-2x32 with 20 rounds (Salmon et al. 2011, "Parallel random numbers: as easy as
 * 1, 2, 3"; the block function JAX's PRNG uses). A keyed bijection on 64-bit counters:
 * out = T_key(counter). Built only from 32-bit add, rotate and xor, so it gives the same
 * bits on every JavaScript engine and machine.
 */
const ROTATIONS_EVEN = [13, 15, 26, 6] as const;
const ROTATIONS_ODD = [17, 29, 16, 24] as const;
/** Skein's key-schedule parity constant. */
const KS_PARITY = 0x1bd11bda;

function rotl32(x: number, r: number): number {
  return ((x << r) | (x >>> (32 - r))) >>> 0;
}

/**
 * One Threefry-2x32-20 block: key (k0, k1), counter (c0, c1) -> two uint32 words.
 *
 * @param k0 - key word 0 (uint32)
 * @param k1 - key word 1 (uint32)
 * @param c0 - counter word 0 (uint32)
 * @param c1 - counter word 1 (uint32)
 */
export function threefry2x32(k0: number, k1: number, c0: number, c1: number): [number, number] {
  const ks = [k0 >>> 0, k1 >>> 0, (k0 ^ k1 ^ KS_PARITY) >>> 0];
  let x0 = (c0 + ks[0]!) >>> 0;
  let x1 = (c1 + ks[1]!) >>> 0;
  for (let group = 0; group < 5; group++) {
    const rot = group % 2 === 0 ? ROTATIONS_EVEN : ROTATIONS_ODD;
    for (const r of rot) {
      x0 = (x0 + x1) >>> 0;
      x1 = (rotl32(x1, r) ^ x0) >>> 0;
    }
    x0 = (x0 + ks[(group + 1) % 3]!) >>> 0;
    x1 = (x1 + ks[(group + 2) % 3]! + group + 1) >>> 0;
  }
  return [x0, x1];
}
