use ndarray::{Array1, Array2, ArrayView1, ArrayView3, Axis};

use ami_core::error::Result;
use ami_core::modules::{Cost, NonFiniteTally, WorldModel};

/// Scratch buffers to evaluate the energy of many action sequences through
/// a world model with the generic batched calls; reused across calls so a
/// planner allocates nothing per iteration once sizes settle.
#[derive(Debug, Default, Clone)]
pub struct Rollout {
    cur: Array2<f32>,
    next: Array2<f32>,
    step: Array1<f32>,
    /// Per-particle energies and repeated actions, for models with
    /// several particles.
    particle_e: Array1<f32>,
    acts: Array2<f32>,
    /// Where the non-finite values met since the last
    /// [`Rollout::take_tally`] came from.
    tally: NonFiniteTally,
}

/// Counts in `tally` the rows of `next` the world model made non-finite
/// (from a finite state).
pub(crate) fn tally_model(tally: &mut NonFiniteTally, cur: ndarray::ArrayView2<'_, f32>, next: ndarray::ArrayView2<'_, f32>) {
    let rows = cur.rows().into_iter().zip(next.rows()).filter(|(c, n)| c.iter().all(|v| v.is_finite()) && n.iter().any(|v| !v.is_finite())).count();
    tally.add(|| "the world model".into(), rows as u64);
}

impl Rollout {
    /// Empty scratch.
    pub fn new() -> Self {
        Self::default()
    }

    /// The modules that produced non-finite values since the last call,
    /// with their row counts; resets the count.
    pub fn take_tally(&mut self) -> NonFiniteTally {
        std::mem::take(&mut self.tally)
    }

    /// Writes into `energies[n]` the energy of action sequence `n` of
    /// `actions` (`[T, N, A]`) from `s0`: the sum over steps of the cost of
    /// each transition, plus the cost's terminal (critic) energy of the
    /// final state. Non-finite energies are written as they are: callers
    /// decide how to skip them. A model asking for several particles
    /// ([`WorldModel::particles`]) has each sequence rolled out that many
    /// times (consecutive rows) and scored by the particles' mean energy
    /// plus its risk weight times their standard deviation; with
    /// [`Particles::reassign`](ami_core::modules::Particles::reassign),
    /// every trajectory moves to the next row of its group after each step.
    pub fn energies(
        &mut self,
        model: &dyn WorldModel,
        cost: &Cost,
        s0: ArrayView1<'_, f32>,
        actions: ArrayView3<'_, f32>,
        energies: &mut Array1<f32>,
    ) -> Result<()> {
        let particles = model.particles();
        if particles.count > 1 {
            return self.particle_energies(model, cost, s0, actions, energies, particles);
        }
        let (t_len, n, _) = actions.dim();
        let s = s0.len();
        if self.cur.dim() != (n, s) {
            self.cur = Array2::zeros((n, s));
            self.next = Array2::zeros((n, s));
            self.step = Array1::zeros(n);
        }
        if energies.len() != n {
            *energies = Array1::zeros(n);
        }
        energies.fill(0.0);
        for mut row in self.cur.rows_mut() {
            row.assign(&s0);
        }
        for t in 0..t_len {
            let a = actions.index_axis(Axis(0), t);
            model.predict(self.cur.view(), a, self.next.view_mut())?;
            tally_model(&mut self.tally, self.cur.view(), self.next.view());
            cost.step_energy_tallied(t, self.cur.view(), a, self.next.view(), self.step.view_mut(), Some(&mut self.tally))?;
            *energies += &self.step;
            std::mem::swap(&mut self.cur, &mut self.next);
        }
        if cost.has_terminal() {
            cost.add_terminal_energy_tallied(t_len, self.cur.view(), energies.view_mut(), Some(&mut self.tally))?;
        }
        Ok(())
    }

    fn particle_energies(
        &mut self,
        model: &dyn WorldModel,
        cost: &Cost,
        s0: ArrayView1<'_, f32>,
        actions: ArrayView3<'_, f32>,
        energies: &mut Array1<f32>,
        particles: ami_core::modules::Particles,
    ) -> Result<()> {
        let (t_len, n, a_dim) = actions.dim();
        let p = particles.count;
        let rows = n * p;
        let s = s0.len();
        if self.cur.dim() != (rows, s) {
            self.cur = Array2::zeros((rows, s));
            self.next = Array2::zeros((rows, s));
            self.step = Array1::zeros(rows);
        }
        if self.acts.dim() != (rows, a_dim) {
            self.acts = Array2::zeros((rows, a_dim));
        }
        if self.particle_e.len() != rows {
            self.particle_e = Array1::zeros(rows);
        }
        if energies.len() != n {
            *energies = Array1::zeros(n);
        }
        self.particle_e.fill(0.0);
        for mut row in self.cur.rows_mut() {
            row.assign(&s0);
        }
        for t in 0..t_len {
            let a = actions.index_axis(Axis(0), t);
            for (r, mut row) in self.acts.rows_mut().into_iter().enumerate() {
                row.assign(&a.row(r / p));
            }
            model.predict(self.cur.view(), self.acts.view(), self.next.view_mut())?;
            tally_model(&mut self.tally, self.cur.view(), self.next.view());
            cost.step_energy_tallied(t, self.cur.view(), self.acts.view(), self.next.view(), self.step.view_mut(), Some(&mut self.tally))?;
            self.particle_e += &self.step;
            if particles.reassign {
                // The trajectory in row q + 1 of each group moves to row q
                // (the model's next member), its energy with it.
                let next = self.next.as_slice().expect("standard layout");
                let cur = self.cur.as_slice_mut().expect("standard layout");
                for (c, g) in cur.chunks_exact_mut(p * s).zip(next.chunks_exact(p * s)) {
                    c[..(p - 1) * s].copy_from_slice(&g[s..]);
                    c[(p - 1) * s..].copy_from_slice(&g[..s]);
                }
                for e in self.particle_e.as_slice_mut().expect("contiguous").chunks_exact_mut(p) {
                    e.rotate_left(1);
                }
            } else {
                std::mem::swap(&mut self.cur, &mut self.next);
            }
        }
        if cost.has_terminal() {
            cost.add_terminal_energy_tallied(t_len, self.cur.view(), self.particle_e.view_mut(), Some(&mut self.tally))?;
        }
        for (i, e) in energies.iter_mut().enumerate() {
            let pe = &self.particle_e.as_slice().expect("contiguous")[i * p..(i + 1) * p];
            let mean = pe.iter().map(|&v| f64::from(v)).sum::<f64>() / p as f64;
            let var = pe.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / p as f64;
            *e = (mean + f64::from(particles.risk) * var.sqrt()) as f32;
        }
        Ok(())
    }

    /// Energy of a single sequence `[T, A]`.
    pub fn energy_of(model: &dyn WorldModel, cost: &Cost, s0: ArrayView1<'_, f32>, plan: &Array2<f32>) -> Result<f32> {
        let mut e = Array1::zeros(1);
        let a = plan.view().insert_axis(Axis(1));
        let mut scratch = Rollout::new();
        scratch.energies(model, cost, s0, a, &mut e)?;
        Ok(e[0])
    }
}
