/**
 * CRC-32C of a concatenation from the CRCs of its parts:
 * `crc32cCombine(crc32c(a), crc32c(b), b.length) === crc32c(a ++ b)`.
 *
 * A CRC is the remainder of a polynomial division over GF(2), so appending
 * `n` bytes multiplies the first part's CRC by x^(8n) modulo the CRC
 * polynomial before the second part's CRC is added (xor). x^(8n) mod P is
 * built from a table of x^(2^k) mod P, one multiplication per set bit of
 * 8n: a few hundred integer operations, whatever the length. It lets the
 * log derive a frame's CRC from a CRC the payload already carries (a Kafka
 * record batch's own CRC-32C) instead of reading the payload a second time.
 *
 * Bit order is reflected (bit 31 holds the coefficient of x^0), as in the
 * CRC-32C register.
 */

/** CRC-32C (Castagnoli) polynomial, reflected. */
const POLY = 0x82f63b78

/** a(x) * b(x) mod P (reflected). `a` must not be 0. */
const multModP = (a: number, b: number): number => {
  let m = 0x80000000
  let p = 0
  while (m !== 0) {
    if ((a & m) !== 0) {
      p ^= b
      if ((a & (m - 1)) === 0) break
    }
    m >>>= 1
    b = (b & 1) !== 0 ? (b >>> 1) ^ POLY : b >>> 1
  }
  return p >>> 0
}

/** X2N[k] = x^(2^k) mod P. */
const X2N: ReadonlyArray<number> = (() => {
  const t: Array<number> = [0x40000000] // x^1
  for (let k = 1; k < 32; k++) t.push(multModP(t[k - 1]!, t[k - 1]!))
  return t
})()

/** x^(n * 2^k) mod P. */
const x2nModP = (n: number, k: number): number => {
  let p = 0x80000000 // x^0
  while (n > 0) {
    if ((n & 1) !== 0) p = multModP(X2N[k & 31]!, p)
    n = Math.floor(n / 2)
    k++
  }
  return p
}

/** CRC-32C of `a ++ b` from `crcA = crc32c(a)`, `crcB = crc32c(b)` and `lengthB = b.length`. */
export const crc32cCombine = (crcA: number, crcB: number, lengthB: number): number =>
  (multModP(x2nModP(lengthB, 3), crcA >>> 0) ^ crcB) >>> 0
