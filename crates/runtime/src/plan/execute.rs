//! Running a [`Plan`]: slots are filled step by step, values move out on their last read,
//! and values on an untaken branch of a `Switch` are dead (TF1 control flow). A TF1 while
//! loop runs its body plan once per iteration, carrying each loop variable's `NextIteration`
//! value into the next iteration's `Merge`, until no variable goes round again. Everything a
//! run changes is in a [`RunState`] local to the run, so one plan serves concurrent runs.

use super::{Action, Input, LoopPlan, Plan, Source, Step};
use crate::ops::control::switch;
use crate::ops::{self, OpError};
use crate::{Error, Value};

/// A slot's state during a run.
#[derive(Debug, Default)]
pub(crate) enum Slot {
    #[default]
    Empty,
    /// Produced on an untaken branch of a `Switch`.
    Dead,
    Live(Value),
}

impl Slot {
    fn is_live(&self) -> bool {
        matches!(self, Slot::Live(_))
    }

    /// A copy for another reader: live values are shared, not copied.
    fn share(&self) -> Slot {
        match self {
            Slot::Live(v) => Slot::Live(v.clone()),
            Slot::Dead => Slot::Dead,
            Slot::Empty => Slot::Empty,
        }
    }
}

/// The per-run state of one plan: its slots and which steps were dead. Kept between the
/// iterations of a loop, so that running a loop body allocates nothing but its values.
#[derive(Debug, Default)]
pub(crate) struct RunState {
    slots: Vec<Slot>,
    dead_steps: Vec<bool>,
    /// When set, the wall time of each step of this plan (outer plan only), by step index.
    pub(crate) step_times: Option<Vec<std::time::Duration>>,
}

impl Plan {
    /// Runs the plan: `feeds` in the order the feed outputs were given at build time.
    pub(crate) fn run(&self, feeds: Vec<Value>) -> Result<Vec<Value>, Error> {
        self.run_in(&mut RunState::default(), feeds)
    }

    /// [`Plan::run`] with `state` reused.
    pub(crate) fn run_in(
        &self,
        state: &mut RunState,
        feeds: Vec<Value>,
    ) -> Result<Vec<Value>, Error> {
        if feeds.len() != self.feeds.len() {
            return Err(Error::Internal(format!(
                "plan expects {} feeds, got {}",
                self.feeds.len(),
                feeds.len()
            )));
        }
        let fetched = self.run_slots(state, feeds.into_iter().map(Slot::Live))?;
        fetched
            .into_iter()
            .zip(&self.fetch_names)
            .map(|(slot, name)| match slot {
                Slot::Live(v) => Ok(v),
                Slot::Dead => Err(Error::DeadFetch { name: name.clone() }),
                Slot::Empty => Err(Error::Internal(format!("fetch {name} was not computed"))),
            })
            .collect()
    }

    /// Runs the plan on feeds that may be dead; returns each fetch's slot.
    fn run_slots(
        &self,
        state: &mut RunState,
        feeds: impl Iterator<Item = Slot>,
    ) -> Result<Vec<Slot>, Error> {
        let slots = &mut state.slots;
        slots.clear();
        slots.resize_with(self.n_slots, Slot::default);
        for (&slot, value) in self.feeds.iter().zip(feeds) {
            if let Some(s) = slots.get_mut(slot) {
                *s = value;
            }
        }
        let dead_steps = &mut state.dead_steps;
        dead_steps.clear();
        if self.tracks_dead {
            dead_steps.resize(self.steps.len(), false);
        }
        if let Some(times) = &mut state.step_times {
            times.clear();
            times.resize(self.steps.len(), std::time::Duration::ZERO);
        }
        for (si, step) in self.steps.iter().enumerate() {
            let started = state.step_times.as_ref().map(|_| std::time::Instant::now());
            if self.tracks_dead && self.is_dead(step, slots, dead_steps) {
                if let Some(d) = dead_steps.get_mut(si) {
                    *d = true;
                }
                for input in &step.inputs {
                    if let (Source::Slot(s), true) = (input.src, input.take) {
                        slots[s] = Slot::Empty;
                    }
                }
                for slot in slots.iter_mut().skip(step.out).take(step.n_out) {
                    *slot = Slot::Dead;
                }
                continue;
            }
            match &step.action {
                Action::Kernel(kernel) => {
                    let inputs = self.gather(step, slots)?;
                    let outputs = kernel.run(inputs).map_err(|e| step_error(step, e))?;
                    self.store(step, slots, outputs)?;
                }
                Action::While(w) => {
                    let inputs = self.gather(step, slots)?;
                    let outputs = w.run(inputs)?;
                    self.store(step, slots, outputs)?;
                }
                Action::Loop(lp) => {
                    let inputs: Vec<Slot> = step
                        .inputs
                        .iter()
                        .map(|input| self.read_slot(input, slots))
                        .collect();
                    let outputs = lp.run(inputs)?;
                    let mut any_dead = false;
                    for (s, v) in (step.out..step.out + step.n_out).zip(outputs) {
                        any_dead |= !v.is_live();
                        slots[s] = v;
                    }
                    if any_dead && step.n_out > 0 {
                        // Control edges from a loop whose results are dead carry deadness.
                        if let Some(d) = dead_steps.get_mut(si) {
                            *d = true;
                        }
                    }
                }
                Action::Switch { force_false } => {
                    let inputs = self.gather(step, slots)?;
                    let [data, pred] = ops::take_inputs(inputs).map_err(|e| step_error(step, e))?;
                    let branch = if *force_false {
                        0
                    } else {
                        usize::from(switch::predicate(&pred).map_err(|e| step_error(step, e))?)
                    };
                    for k in 0..step.n_out {
                        slots[step.out + k] = Slot::Dead;
                    }
                    if branch < step.n_out {
                        slots[step.out + branch] = Slot::Live(data);
                    }
                }
                Action::Merge => {
                    let mut chosen = None;
                    for (k, input) in step.inputs.iter().enumerate() {
                        let value = self.read(input, slots);
                        if chosen.is_none() {
                            if let Some(v) = value {
                                chosen = Some((k, v));
                            }
                        }
                    }
                    match chosen {
                        Some((k, v)) => {
                            let index = i32::try_from(k)
                                .map_err(|_| Error::Internal("merge index".into()))?;
                            let outs = [Some(v), Some(Value::scalar(index))];
                            for (s, v) in (step.out..step.out + step.n_out).zip(outs) {
                                slots[s] = v.map_or(Slot::Empty, Slot::Live);
                            }
                        }
                        None => {
                            if let Some(d) = dead_steps.get_mut(si) {
                                *d = true;
                            }
                            for slot in slots.iter_mut().skip(step.out).take(step.n_out) {
                                *slot = Slot::Dead;
                            }
                        }
                    }
                }
            }
            for &s in &step.unread {
                slots[s] = Slot::Empty;
            }
            if let (Some(times), Some(started)) = (&mut state.step_times, started) {
                if let Some(t) = times.get_mut(si) {
                    *t = started.elapsed();
                }
            }
        }
        let mut fetched = Vec::with_capacity(self.fetches.len());
        for (src, &take) in self.fetches.iter().zip(&self.fetch_takes) {
            fetched.push(match *src {
                Source::Const(c) => Slot::Live(
                    self.consts
                        .get(c)
                        .cloned()
                        .ok_or_else(|| Error::Internal(format!("constant {c}")))?,
                ),
                Source::Slot(s) if take => std::mem::take(&mut slots[s]),
                Source::Slot(s) => slots[s].share(),
            });
        }
        // Values left in slots (feeds nobody read) are released now, not at the next run.
        slots.clear();
        Ok(fetched)
    }

    /// Stores a kernel's outputs in the step's slots.
    fn store(&self, step: &Step, slots: &mut [Slot], outputs: Vec<Value>) -> Result<(), Error> {
        if outputs.len() < step.n_out {
            return Err(step_error(
                step,
                OpError(format!(
                    "produced {} outputs, but output {} is used",
                    outputs.len(),
                    step.n_out - 1
                )),
            ));
        }
        for (s, v) in (step.out..step.out + step.n_out).zip(outputs) {
            slots[s] = Slot::Live(v);
        }
        Ok(())
    }

    fn is_dead(&self, step: &Step, slots: &[Slot], dead_steps: &[bool]) -> bool {
        if step
            .control
            .iter()
            .any(|&c| dead_steps.get(c).copied().unwrap_or(false))
        {
            return true;
        }
        // A Merge fires on any live input; a loop passes deadness on to its body.
        !matches!(step.action, Action::Merge | Action::Loop(_))
            && step.inputs.iter().any(
                |i| matches!(i.src, Source::Slot(s) if matches!(slots.get(s), Some(Slot::Dead))),
            )
    }

    /// A live input's value (moved out on its last read), or `None` when it is dead.
    fn read(&self, input: &Input, slots: &mut [Slot]) -> Option<Value> {
        match self.read_slot(input, slots) {
            Slot::Live(v) => Some(v),
            _ => None,
        }
    }

    /// An input's slot (moved out on its last read).
    fn read_slot(&self, input: &Input, slots: &mut [Slot]) -> Slot {
        match input.src {
            Source::Const(c) => self.consts.get(c).cloned().map_or(Slot::Empty, Slot::Live),
            Source::Slot(s) => match slots.get_mut(s) {
                Some(slot) if input.take => std::mem::take(slot),
                Some(slot) => slot.share(),
                None => Slot::Empty,
            },
        }
    }

    fn gather(&self, step: &Step, slots: &mut [Slot]) -> Result<Vec<Value>, Error> {
        step.inputs
            .iter()
            .enumerate()
            .map(|(k, input)| {
                self.read(input, slots).ok_or_else(|| {
                    Error::Internal(format!(
                        "input {k} of node {:?} is not available",
                        step.node
                    ))
                })
            })
            .collect()
    }
}

impl LoopPlan {
    /// Runs the loop on the step's inputs (invariants, then the loop variables' initial
    /// values); returns each `Exit`'s value, dead when no iteration delivered it.
    fn run(&self, inputs: Vec<Slot>) -> Result<Vec<Slot>, Error> {
        let mut inputs = inputs;
        let mut vars: Vec<Slot> = inputs.split_off(self.n_invariants.min(inputs.len()));
        let invariants = inputs;
        if vars.len() != self.vars.len() {
            return Err(Error::Internal(format!(
                "loop {:?} expects {} variables, got {}",
                self.frame,
                self.vars.len(),
                vars.len()
            )));
        }
        let mut exits: Vec<Slot> = (0..self.exits.len()).map(|_| Slot::Dead).collect();
        let mut state = RunState::default();
        let mut iteration: u64 = 0;
        loop {
            if iteration >= self.max_iterations {
                return Err(Error::IterationLimit {
                    frame: self.frame.clone(),
                    limit: self.max_iterations,
                });
            }
            let index = if iteration == 0 { 0i32 } else { 1 };
            let feeds = invariants.iter().map(Slot::share).chain(
                vars.iter_mut()
                    .zip(&self.vars)
                    .flat_map(|(value, var)| {
                        let index = match (&value, var.index) {
                            (_, false) => None,
                            (Slot::Live(_), true) => Some(Slot::Live(Value::scalar(index))),
                            (_, true) => Some(Slot::Dead),
                        };
                        std::iter::once(std::mem::take(value)).chain(index)
                    })
                    .collect::<Vec<_>>(),
            );
            let mut fetched = self.body.run_slots(&mut state, feeds)?;
            for (exit, &f) in exits.iter_mut().zip(&self.exits) {
                if let Some(slot) = fetched.get_mut(f) {
                    if slot.is_live() {
                        *exit = std::mem::take(slot);
                    }
                }
            }
            let mut again = false;
            for (value, var) in vars.iter_mut().zip(&self.vars) {
                *value = fetched
                    .get_mut(var.next)
                    .map(std::mem::take)
                    .unwrap_or_default();
                again |= value.is_live();
            }
            if !again {
                return Ok(exits);
            }
            iteration += 1;
        }
    }
}

fn step_error(step: &Step, e: OpError) -> Error {
    Error::Node {
        node: step.node.clone(),
        op: step.op.clone(),
        message: e.0,
    }
}
