// Waiting for the GPU without spinning, in Node.
//
// Dawn for Node (the `webgpu` package) completes a mapAsync or onSubmittedWorkDone by calling
// `instance.ProcessEvents()` and, while anything is still pending, queuing itself again with
// `setImmediate`: a busy loop on the JavaScript thread for as long as the GPU works. On a real
// GPU that costs a core of CPU and nothing else. On a software adapter (Mesa's lavapipe, which
// runs the "GPU" on the CPU's cores) the loop takes a core from the kernels themselves: on two
// cores, DRIFA-Net's fused bench step ran at 600-850 ms with the loop taking 1,000 ms of CPU a
// step, and at 550-650 ms with the loop quieted (110 ms of CPU a step; docs/performance.md).
//
// Quieting it: while installed, `globalThis.setImmediate` is wrapped, and when Dawn's poll (a
// native function without a name or parameters, which is what the binding queues; anything
// else passes straight through) queues itself again, the thread first sleeps in Atomics.wait
// (a futex, no CPU) for a twentieth of how long the wait has lasted, at most 1 ms, after the
// wait's first 2 ms (short waits keep Dawn's pace). A training step of 500 ms is then
// polled every 1 ms and its answer arrives at most 5 % (or 1 ms) late; the kernels get both
// cores. Installed per device, removed with the last one.
type SetImmediate = typeof setImmediate;

/** Polls of a wait's first milliseconds do not sleep: a sleep in Atomics.wait lasts 0.07-0.1 ms
 * more than asked (the kernel's timer slack), a large part of a short wait. */
const SPIN_FIRST_MS = 2;
/** Longest sleep before Dawn's next poll, ms. */
const MAX_SLEEP_MS = 1;
/** A sleep is this fraction of how long the wait has lasted so far. */
const SLEEP_FRACTION = 1 / 20;

let installs = 0;
/** Dawn polls seen, how many of them slept, and for how long, since the process started. */
const stats = { polls: 0, sleeps: 0, sleptMs: 0 };
let original: SetImmediate | undefined;
let wrapper: SetImmediate | undefined;

/** How long to sleep before a poll that comes `waitedMs` after the first poll of its wait, ms. */
export function pollSleepMs(waitedMs: number): number {
  return waitedMs < SPIN_FIRST_MS ? 0 : Math.min(MAX_SLEEP_MS, waitedMs * SLEEP_FRACTION);
}

/** True for the function Dawn's binding queues to poll: native, unnamed, no parameters. Promise
 * resolvers (native, unnamed) take one parameter; user functions are not native. */
function isDawnPoll(fn: unknown): boolean {
  return typeof fn === "function" && fn.length === 0 && fn.name === "" && Function.prototype.toString.call(fn).includes("[native code]");
}

function makeWrapper(next: SetImmediate): SetImmediate {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  let waitStart = 0;
  // Dawn queues its next poll from inside the current one while work is pending; a poll queued
  // from anywhere else (a new mapAsync, onSubmittedWorkDone) starts a new wait. Back-to-back
  // waits (the autotuner's, the profiler's) are then each timed from their own start.
  let inPoll = false;
  const wrapped = function (this: unknown, callback: (...args: unknown[]) => void, ...args: unknown[]) {
    if (installs > 0 && isDawnPoll(callback)) {
      const now = performance.now();
      if (!inPoll) waitStart = now;
      const sleep = pollSleepMs(now - waitStart);
      if (sleep > 0) {
        Atomics.wait(cell, 0, 0, sleep);
        stats.sleeps++;
        stats.sleptMs += performance.now() - now;
      }
      stats.polls++;
      const poll = callback;
      return next(function (this: unknown, ...pollArgs: unknown[]) {
        inPoll = true;
        try {
          poll.apply(this, pollArgs);
        } finally {
          inPoll = false;
        }
      }, ...args);
    }
    return next(callback, ...args);
  };
  return Object.assign(wrapped, next) as unknown as SetImmediate;
}

/** Whether this process can quiet Dawn's poll (Node: setImmediate and Atomics.wait on the main
 * thread). */
export function canQuietWait(): boolean {
  return typeof globalThis.setImmediate === "function" && typeof SharedArrayBuffer === "function";
}

/** Quiets Dawn's poll until the returned function is called (counted: nested installs share one
 * wrapper; the last release restores setImmediate, or, if something wrapped it after us, leaves
 * our wrapper in that chain passing everything straight through). */
export function installQuietWait(): () => void {
  if (!canQuietWait()) return () => {};
  if (installs++ === 0) {
    original = globalThis.setImmediate;
    wrapper = makeWrapper(original);
    globalThis.setImmediate = wrapper;
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--installs === 0) {
      if (globalThis.setImmediate === wrapper) globalThis.setImmediate = original!;
      original = wrapper = undefined;
    }
  };
}

/** Whether the wrapper is in place now, and what it has done so far (a test that waits for the
 * GPU checks that Dawn's poll is still recognised: a new binding could queue it differently). */
export function quietWaitStatus(): { installed: boolean; polls: number; sleeps: number; sleptMs: number } {
  return { installed: installs > 0, ...stats };
}
