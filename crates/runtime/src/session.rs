//! [`Session`]: a plan with its weights loaded, run with feeds.

use ckpt_bundle::Checkpoint;
use ckpt_graph::{Model, Node, Output, SignatureTensor, PLACEHOLDER_OPS};

use crate::memory;
use crate::ops::array::placeholder;
use crate::ops::dtype_attr;
use crate::ops::parallel;
use crate::plan::{Plan, PlanInput, RunState};
use crate::rewrite::Rewrite;
use crate::{DType, Error, Value};

/// How a session is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionOptions {
    /// Threads for the kernels, 1 to [`SessionOptions::MAX_THREADS`] (more is
    /// [`Error::TooManyThreads`]; 0 is taken as 1); `None` is one per core. A run always goes
    /// on the calling thread. With `Some(1)` every kernel is single-threaded; with more, the
    /// session starts `threads - 1` workers, and a kernel large enough to pay for it splits
    /// into tasks that the workers and the calling thread claim one at a time. Between a
    /// run's parallel sections the workers spin for a short while (200 µs) rather than
    /// sleep, so that the next section starts at once, as ONNX Runtime's workers do; after
    /// that they sleep until the next section. How a kernel splits depends only on the
    /// thread count, never on which thread runs a task, so at one thread count the results
    /// are the same bits from run to run. Another count can change the last bits of a large
    /// matrix product: it is split into one block per thread, and with one thread it goes
    /// through `matrixmultiply` instead of `gemm`. Runs of one session on several threads at
    /// once share its workers: while one run's section has them, another run's sections go
    /// on that run's own thread. Each session has workers of its own (`None` too), asleep
    /// when no run needs them.
    pub threads: Option<usize>,
    /// Turn recognized dropout subgraphs into identities (and take the non-dropout side of
    /// dropout conds), so a training graph runs deterministically at inference.
    pub inference: bool,
    /// How many times the body of one while loop may run before the run fails with
    /// [`Error::IterationLimit`] naming the loop, so that a loop that never ends does not hang
    /// (default [`SessionOptions::DEFAULT_MAX_ITERATIONS`]). Each run of a nested loop counts
    /// on its own.
    pub max_iterations: u64,
    /// Plan every node as its own kernel: no batch norm folded into convolutions, no `Pad`
    /// folded into their padding, no bias or activation fused (the plan the optimized one is
    /// tested against).
    pub unoptimized: bool,
}

impl SessionOptions {
    /// The default of [`SessionOptions::max_iterations`]: ten million.
    pub const DEFAULT_MAX_ITERATIONS: u64 = 10_000_000;
    /// The most threads [`SessionOptions::threads`] may ask for: far above any useful count,
    /// low enough that a typo cannot make the process start millions of threads.
    pub const MAX_THREADS: usize = 1024;
}

impl Default for SessionOptions {
    fn default() -> SessionOptions {
        SessionOptions {
            threads: None,
            inference: false,
            max_iterations: SessionOptions::DEFAULT_MAX_ITERATIONS,
            unoptimized: false,
        }
    }
}

/// The wall time of one step of a session's plan, from [`Session::run_profiled`].
#[derive(Clone, Debug)]
pub struct StepTime {
    /// The node the step runs (for a fused chain, the last node, whose output it produces).
    pub node: String,
    /// That node's op type.
    pub op: String,
    /// Wall time of the step.
    pub elapsed: std::time::Duration,
}

/// A placeholder (or other fed tensor) the session expects.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedInfo {
    /// The name as given to [`Session::new`].
    pub name: String,
    /// The dtype a fed value is cast to, when the graph declares one.
    pub dtype: Option<DType>,
    /// The static shape a fed value must match (`-1` for any size); `None` when unknown.
    pub shape: Option<Vec<i64>>,
}

/// A graph compiled for some fetches and feeds, with constants decoded and variables loaded
/// from the checkpoint. Build once, run many times, from any thread.
///
/// ```no_run
/// use ckpt_bundle::Checkpoint;
/// use ckpt_graph::Model;
/// use ckpt_runtime::{Session, SessionOptions, Value};
///
/// let model = Model::load("model.ckpt.meta".as_ref())?;
/// let bundle = Checkpoint::open("model.ckpt")?; // V1 or V2
/// let session = Session::new(&model, Some(&bundle), &["pred"], &["x", "keep_prob"], SessionOptions::default())?;
/// let x = Value::new(vec![1, 784], vec![0.0f32; 784])?;
/// let out = session.run(&[("x", x), ("keep_prob", Value::scalar(1.0f32))])?;
/// println!("{:?}", out[0].as_i64());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Session {
    plan: Plan,
    feeds: Vec<(Output, FeedInfo)>,
    fetch_names: Vec<String>,
    /// The worker threads, when the session has more than one thread.
    team: Option<crate::team::Team>,
    /// The buffer pools of finished runs ([`memory::BufferPool`]): a run takes one (a new one
    /// when concurrent runs hold the others) and puts it back when it ends.
    buffers: std::sync::Mutex<Vec<memory::BufferPool>>,
}

impl Session {
    /// Builds the plan computing `fetches` from `feeds` (names `node` or `node:k`).
    ///
    /// Errors: an unknown name (with close names suggested), unsupported ops (every one the
    /// fetches need, with a node count and an example node each), a needed placeholder missing from `feeds`, variables
    /// missing from the checkpoint (all of them named), a variable whose dtype or shape
    /// disagrees with the graph.
    pub fn new(
        model: &Model,
        bundle: Option<&Checkpoint>,
        fetches: &[&str],
        feeds: &[&str],
        options: SessionOptions,
    ) -> Result<Session, Error> {
        let graph = &model.graph;
        let fetches = fetches
            .iter()
            .map(|&f| Ok((f.to_string(), graph.parse_output(f)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        let feeds = feeds
            .iter()
            .map(|&f| Ok((f.to_string(), graph.parse_output(f)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        Session::build(model, bundle, fetches, feeds, options)
    }

    /// Builds the plan running signature `key` of `model` (a SavedModel's, see
    /// [`LoadedSavedModel`](crate::LoadedSavedModel)): `outputs` are output keys to fetch (all
    /// of the signature's outputs, sorted by key, when empty) and `inputs` the input keys that
    /// will be fed. [`Session::run`] then takes values by input key, and
    /// [`Session::fetch_names`] gives the output keys. A name that is no key of the signature
    /// may be a graph tensor name (`x:0`, or `x`), as in [`Session::new`].
    ///
    /// Errors: an unknown signature (with its keys listed), a signature that cannot run
    /// (see [`Model::signature`]), an input or output that is neither a key nor a tensor, and
    /// every error of [`Session::new`].
    pub fn for_signature(
        model: &Model,
        bundle: Option<&Checkpoint>,
        key: &str,
        inputs: &[&str],
        outputs: &[&str],
        options: SessionOptions,
    ) -> Result<Session, Error> {
        let signature = model.signature(key)?;
        let resolve = |kind: &'static str, name: &str, tensors: &[SignatureTensor]| {
            let found = tensors
                .iter()
                .find(|t| t.key == name)
                .or_else(|| match kind {
                    "input" => signature.input(name),
                    _ => signature.output(name),
                });
            match found {
                Some(t) => Ok((name.to_string(), t.output)),
                None => model
                    .graph
                    .parse_output(name)
                    .map(|output| (name.to_string(), output))
                    .map_err(|_| Error::UnknownSignatureTensor {
                        signature: key.to_string(),
                        kind,
                        name: name.to_string(),
                        keys: tensors.iter().map(|t| t.key.clone()).collect(),
                    }),
            }
        };
        let fetches = if outputs.is_empty() {
            signature
                .outputs
                .iter()
                .map(|t| (t.key.clone(), t.output))
                .collect()
        } else {
            outputs
                .iter()
                .map(|&name| resolve("output", name, &signature.outputs))
                .collect::<Result<Vec<_>, _>>()?
        };
        let feeds = inputs
            .iter()
            .map(|&name| resolve("input", name, &signature.inputs))
            .collect::<Result<Vec<_>, _>>()?;
        Session::build(model, bundle, fetches, feeds, options).map_err(|e| match e {
            // Name the input key the user must feed, rather than its placeholder.
            Error::UnfedPlaceholder { name, hint } => {
                match signature
                    .inputs
                    .iter()
                    .find(|t| model.graph.node(t.output.node).name == name)
                {
                    Some(t) => Error::UnfedSignatureInput {
                        signature: key.to_string(),
                        key: t.key.clone(),
                        tensor: t.name.clone(),
                        hint,
                    },
                    None => Error::UnfedPlaceholder { name, hint },
                }
            }
            other => other,
        })
    }

    /// Builds the plan computing the named `fetches` from the named `feeds`.
    fn build(
        model: &Model,
        bundle: Option<&Checkpoint>,
        fetches: Vec<(String, Output)>,
        feeds: Vec<(String, Output)>,
        options: SessionOptions,
    ) -> Result<Session, Error> {
        let graph = &model.graph;
        let fetch_outputs: Vec<Output> = fetches.iter().map(|(_, o)| *o).collect();
        let mut feed_infos: Vec<(Output, FeedInfo)> = Vec::with_capacity(feeds.len());
        for (name, output) in feeds {
            if feed_infos.iter().any(|(o, _)| *o == output) {
                return Err(Error::DuplicateFeed { name });
            }
            let node = graph.node(output.node);
            let is_placeholder = PLACEHOLDER_OPS.contains(&node.op.as_str());
            let dtype = if is_placeholder {
                dtype_attr(node, "dtype").ok()
            } else if output.index == 0 {
                declared_dtype(node)
            } else {
                None
            };
            // As TensorFlow reads the `shape` attribute: none, or `shape {}` in a graph older
            // than TF 1.0, takes any shape.
            let shape = if is_placeholder {
                model.declared_shape(node)?
            } else {
                None
            };
            feed_infos.push((output, FeedInfo { name, dtype, shape }));
        }
        let feed_outputs: Vec<Output> = feed_infos.iter().map(|(o, _)| *o).collect();
        let rewrite = if options.inference {
            Rewrite::dropout(graph, model)
        } else {
            Rewrite::default()
        };
        let function_plans = std::sync::atomic::AtomicUsize::new(0);
        let build = || {
            Plan::build(&PlanInput {
                model,
                graph,
                bundle,
                main_graph: true,
                fetches: &fetch_outputs,
                feeds: &feed_outputs,
                bound: &[],
                inference: options.inference,
                optimize: !options.unoptimized,
                rewrite: &rewrite,
                depth: 0,
                max_iterations: options.max_iterations,
                function_plans: &function_plans,
            })
        };
        let threads = match options.threads {
            Some(n) if n > SessionOptions::MAX_THREADS => {
                return Err(Error::TooManyThreads {
                    requested: n,
                    limit: SessionOptions::MAX_THREADS,
                })
            }
            Some(n) => n.max(1),
            None => std::thread::available_parallelism().map_or(1, usize::from),
        };
        // One thread: the caller's own, kernels single-threaded (see `one_thread`).
        let team = if threads > 1 {
            Some(crate::team::Team::new(threads).map_err(|e| Error::ThreadPool(e.to_string()))?)
        } else {
            None
        };
        // Folding constants runs kernels: do it on the session's threads too.
        let plan = match &team {
            Some(team) => parallel::with_team(team.shared(), build)?,
            None => parallel::one_thread(build)?,
        };
        Ok(Session {
            plan,
            feeds: feed_infos,
            fetch_names: fetches.into_iter().map(|(name, _)| name).collect(),
            team,
            buffers: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Runs the plan: one value per fetch, in order. Every feed given to [`Session::new`] must
    /// be fed; a value is cast to the placeholder's dtype (as `feed_dict` does) and checked
    /// against its static shape.
    pub fn run(&self, feeds: &[(&str, Value)]) -> Result<Vec<Value>, Error> {
        let values = self.feed_values(feeds)?;
        self.execute(|| self.with_buffers(|| self.plan.run(values)))
    }

    /// Runs `run` (one run of the plan, on the thread calling this) with one of the session's
    /// buffer pools serving its kernels' outputs.
    fn with_buffers<R>(&self, run: impl FnOnce() -> R) -> R {
        let pool = self
            .buffers
            .lock()
            .ok()
            .and_then(|mut pools| pools.pop())
            .unwrap_or_default();
        let (result, pool) = memory::with_pool(pool, run);
        if let Ok(mut pools) = self.buffers.lock() {
            pools.push(pool);
        }
        result
    }

    /// How many tensor buffers of at least 64 KiB the most recently finished run allocated
    /// afresh, because no buffer freed earlier (in that run or the one before) fitted. Kernel
    /// outputs (convolutions, matrix products, pooling) reuse the buffers of tensors that died
    /// earlier: a value leaves its slot on its last read, which the plan knows from when it was
    /// built, and its buffer goes to a pool the session keeps between runs. So once runs on fixed input shapes reach their steady state (the third
    /// run at the latest on the committed fixtures) this is 0; the fetched tensors a run
    /// returns leave the pool, and their next ones are taken from buffers that died during the
    /// run. 0 before any run.
    pub fn last_run_fresh_allocations(&self) -> usize {
        self.buffers
            .lock()
            .ok()
            .and_then(|pools| pools.last().map(memory::BufferPool::misses))
            .unwrap_or(0)
    }

    /// Runs `run` on the calling thread with this session's threads (see
    /// [`SessionOptions::threads`]).
    fn execute<R>(&self, run: impl FnOnce() -> R) -> R {
        match &self.team {
            Some(team) => parallel::with_team(team.shared(), run),
            None => parallel::one_thread(run),
        }
    }

    /// [`Session::run`], also timing each step of the plan: the fetched values and one
    /// [`StepTime`] per step, in execution order. Steps inside loop bodies and functions are
    /// counted in the step that runs them. For `ckpt-run --profile`.
    ///
    /// # Errors
    /// As [`Session::run`].
    pub fn run_profiled(
        &self,
        feeds: &[(&str, Value)],
    ) -> Result<(Vec<Value>, Vec<StepTime>), Error> {
        let values = self.feed_values(feeds)?;
        let mut state = RunState::default();
        state.step_times = Some(Vec::new());
        let outputs =
            self.execute(|| self.with_buffers(|| self.plan.run_in(&mut state, values)))?;
        let times = state.step_times.unwrap_or_default();
        let steps = self
            .plan
            .step_labels()
            .zip(times)
            .map(|((node, op), elapsed)| StepTime {
                node: node.to_string(),
                op: op.to_string(),
                elapsed,
            })
            .collect();
        Ok((outputs, steps))
    }

    /// Checks and orders the feeds of one run.
    fn feed_values(&self, feeds: &[(&str, Value)]) -> Result<Vec<Value>, Error> {
        let mut values: Vec<Option<Value>> = vec![None; self.feeds.len()];
        for (name, value) in feeds {
            let i = self.feed_index(name)?;
            let (_, info) = &self.feeds[i];
            if values[i].is_some() {
                return Err(Error::DuplicateFeed {
                    name: name.to_string(),
                });
            }
            values[i] = Some(check_feed(info, value)?);
        }
        let values: Vec<Value> = values
            .into_iter()
            .zip(&self.feeds)
            .map(|(v, (_, info))| {
                v.ok_or_else(|| Error::UnfedPlaceholder {
                    name: info.name.clone(),
                    hint: placeholder::hint(&info.name).to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(values)
    }

    /// The feeds the session expects, in the order given to [`Session::new`].
    pub fn placeholders(&self) -> impl Iterator<Item = &FeedInfo> {
        self.feeds.iter().map(|(_, info)| info)
    }

    /// The fetched tensors' names, in output order.
    pub fn fetch_names(&self) -> &[String] {
        &self.fetch_names
    }

    /// How many kernels run per call, after constants were folded at build time.
    pub fn num_steps(&self) -> usize {
        self.plan.num_steps()
    }

    fn feed_index(&self, name: &str) -> Result<usize, Error> {
        if let Some(i) = self.feeds.iter().position(|(_, info)| info.name == name) {
            return Ok(i);
        }
        // "x" and "x:0" name the same tensor.
        let canonical = |s: &str| {
            if s.contains(':') {
                s.to_string()
            } else {
                format!("{s}:0")
            }
        };
        let wanted = canonical(name);
        self.feeds
            .iter()
            .position(|(_, info)| canonical(&info.name) == wanted)
            .ok_or_else(|| Error::UnknownFeed {
                name: name.to_string(),
                expected: self
                    .feeds
                    .iter()
                    .map(|(_, info)| info.name.clone())
                    .collect(),
            })
    }
}

/// `value` cast to the feed's dtype and checked against its static shape.
fn check_feed(info: &FeedInfo, value: &Value) -> Result<Value, Error> {
    let value = match info.dtype {
        Some(d) if d != value.dtype() => value.cast(d).map_err(|_| Error::FeedDtype {
            name: info.name.clone(),
            expected: d,
            found: value.dtype(),
        })?,
        _ => value.clone(),
    };
    if let Some(expected) = &info.shape {
        let found = value.shape();
        let fits = expected.len() == found.len()
            && expected
                .iter()
                .zip(found)
                .all(|(&e, &f)| e < 0 || e as usize == f);
        if !fits {
            let dims: Vec<String> = expected
                .iter()
                .map(|d| {
                    if *d < 0 {
                        "?".to_string()
                    } else {
                        d.to_string()
                    }
                })
                .collect();
            return Err(Error::FeedShape {
                name: info.name.clone(),
                expected: format!("[{}]", dims.join(",")),
                found: found.to_vec(),
            });
        }
    }
    Ok(value)
}

/// The dtype a graph node declares for its output 0, when it declares one.
fn declared_dtype(node: &Node) -> Option<DType> {
    ["dtype", "T"].iter().find_map(|a| dtype_attr(node, a).ok())
}
