/**
 * Predicted error of FAVOR+ from the paper's variance results, used as a derived test bound.
 *
 * For one query q (x̂ = d^-1/4·x throughout) and keys k_j, FAVOR+ with m IID positive features
 * estimates out = N/D with N = Σ_j K_j v_j, D = Σ_j K_j, K_j = exp(q̂·k̂_j), by N̂/D̂ where
 * N̂ = (1/m) Σ_r X_r, D̂ = (1/m) Σ_r Y_r, X_r = Σ_j a_rj v_j, Y_r = Σ_j a_rj and
 * a_rj = exp(ω_r·(q̂ + k̂_j) − |q̂|²/2 − |k̂_j|²/2) (Lemma 1: E a_rj = K_j).
 * First-order (delta method) error of the ratio: N̂/D̂ − μ ≈ (N̂ − μ D̂)/D, so
 *   E‖out − μ‖² ≈ (1/m) · E‖X − μY‖² / D²,
 *   E‖X − μY‖² = Σ_{j,j'} E[a_j a_j'] (v_j − μ)·(v_j' − μ),
 *   E[a_j a_j'] = exp(|q̂|² + 2q̂·k̂_j + 2q̂·k̂_j' + k̂_j·k̂_j')   (E e^{ω·z} = e^{|z|²/2}).
 * For a single key this reduces to Lemma 2's MSE (exp(|q̂+k̂|²) − 1)·K²/m. Orthogonal features
 * have lower MSE than IID (Theorem 2), so this IID prediction bounds the orthogonal case to first order.
 *
 * @param q - queries [Lq][d]
 * @param k - keys [Lk][d]
 * @param v - values [Lk][dv]
 * @param m - the number of random features
 */
export function predictedFavorMse(
  q: number[][],
  k: number[][],
  v: number[][],
  m: number,
): { mse: number[]; exact: number[][]; denominatorRelVar: number[] } {
  const d = q[0]!.length;
  const c = d ** -0.25;
  const kh = k.map((row) => row.map((x) => x * c));
  const L = k.length;
  const dv = v[0]!.length;
  const dot = (a: number[], b: number[]) => a.reduce((s, x, t) => s + x * b[t]!, 0);
  const gram = kh.map((a) => kh.map((b) => Math.exp(dot(a, b))));
  const mse: number[] = [];
  const exact: number[][] = [];
  const denominatorRelVar: number[] = [];
  for (const qi of q) {
    const qh = qi.map((x) => x * c);
    const s = kh.map((kj) => dot(qh, kj));
    const sMax = Math.max(...s);
    // work relative to exp(sMax) to avoid overflow: K_j = e^{s_j}, weights c_j = e^{2 s_j}
    const K = s.map((x) => Math.exp(x - sMax));
    const D = K.reduce((a, b) => a + b, 0);
    const mu = Array.from(
      { length: dv },
      (_, t) => K.reduce((acc, kj, j) => acc + kj * v[j]![t]!, 0) / D,
    );
    exact.push(mu);
    const cw = s.map((x) => Math.exp(2 * (x - sMax)));
    const qq = dot(qh, qh);
    let total = 0;
    for (let t = 0; t < dv; t++) {
      const u = cw.map((cj, j) => cj * (v[j]![t]! - mu[t]!));
      for (let j = 0; j < L; j++) {
        let inner = 0;
        const gj = gram[j]!;
        for (let jj = 0; jj < L; jj++) inner += gj[jj]! * u[jj]!;
        total += u[j]! * inner;
      }
    }
    // (1/m) · e^{|q̂|²} · total / D², all relative to e^{2 sMax} (cancels between total and D²)
    mse.push((Math.exp(qq) * total) / (m * D * D));
    // Var(D̂)/D² = (E[Y²] − D²)/(m D²): where this is not small, first order is not enough
    let ey2 = 0;
    for (let j = 0; j < L; j++)
      for (let jj = 0; jj < L; jj++) ey2 += cw[j]! * cw[jj]! * gram[j]![jj]!;
    denominatorRelVar.push((Math.exp(qq) * ey2 - D * D) / (m * D * D));
  }
  return { mse, exact, denominatorRelVar };
}
