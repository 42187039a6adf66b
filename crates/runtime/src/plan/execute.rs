//! Running a [`Plan`]: slots are filled step by step, values move out on their last read,
//! and values on an untaken branch of a `Switch` are dead (TF1 control flow). Everything a
//! run changes is local to [`Plan::run`], so one plan serves concurrent runs.

use super::{Action, Input, Plan, Source, Step};
use crate::ops::control::switch;
use crate::ops::{self, OpError};
use crate::{Error, Value};

/// A slot's state during a run.
#[derive(Debug)]
enum Slot {
    Empty,
    /// Produced on an untaken branch of a `Switch`.
    Dead,
    Live(Value),
}

impl Plan {
    /// Runs the plan: `feeds` in the order the feed outputs were given at build time.
    pub(crate) fn run(&self, feeds: Vec<Value>) -> Result<Vec<Value>, Error> {
        if feeds.len() != self.feeds.len() {
            return Err(Error::Internal(format!(
                "plan expects {} feeds, got {}",
                self.feeds.len(),
                feeds.len()
            )));
        }
        let mut slots: Vec<Slot> = (0..self.n_slots).map(|_| Slot::Empty).collect();
        for (&slot, value) in self.feeds.iter().zip(feeds) {
            if let Some(s) = slots.get_mut(slot) {
                *s = Slot::Live(value);
            }
        }
        let mut dead_steps = vec![
            false;
            if self.tracks_dead {
                self.steps.len()
            } else {
                0
            }
        ];
        for (si, step) in self.steps.iter().enumerate() {
            if self.tracks_dead && self.is_dead(step, &slots, &dead_steps) {
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
                    let inputs = self.gather(step, &mut slots)?;
                    let outputs = kernel.run(inputs).map_err(|e| step_error(step, e))?;
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
                }
                Action::Switch { force_false } => {
                    let inputs = self.gather(step, &mut slots)?;
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
                        let value = self.read(input, &mut slots);
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
        }
        self.fetches
            .iter()
            .zip(&self.fetch_names)
            .map(|(src, name)| match *src {
                Source::Const(c) => self
                    .consts
                    .get(c)
                    .cloned()
                    .ok_or_else(|| Error::Internal(format!("constant {c}"))),
                Source::Slot(s) => match std::mem::replace(&mut slots[s], Slot::Empty) {
                    Slot::Live(v) => {
                        // The same slot may be fetched twice.
                        slots[s] = Slot::Live(v.clone());
                        Ok(v)
                    }
                    Slot::Dead => Err(Error::DeadFetch { name: name.clone() }),
                    Slot::Empty => Err(Error::Internal(format!("fetch {name} was not computed"))),
                },
            })
            .collect()
    }

    fn is_dead(&self, step: &Step, slots: &[Slot], dead_steps: &[bool]) -> bool {
        if step
            .control
            .iter()
            .any(|&c| dead_steps.get(c).copied().unwrap_or(false))
        {
            return true;
        }
        !matches!(step.action, Action::Merge)
            && step.inputs.iter().any(
                |i| matches!(i.src, Source::Slot(s) if matches!(slots.get(s), Some(Slot::Dead))),
            )
    }

    /// A live input's value (moved out on its last read), or `None` when it is dead.
    fn read(&self, input: &Input, slots: &mut [Slot]) -> Option<Value> {
        match input.src {
            Source::Const(c) => self.consts.get(c).cloned(),
            Source::Slot(s) => {
                let slot = slots.get_mut(s)?;
                if input.take {
                    match std::mem::replace(slot, Slot::Empty) {
                        Slot::Live(v) => Some(v),
                        _ => None,
                    }
                } else {
                    match slot {
                        Slot::Live(v) => Some(v.clone()),
                        _ => None,
                    }
                }
            }
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

fn step_error(step: &Step, e: OpError) -> Error {
    Error::Node {
        node: step.node.clone(),
        op: step.op.clone(),
        message: e.0,
    }
}
