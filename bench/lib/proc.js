// Small helpers shared by the Node benchmarks: command-line numbers and the
// CPU time of a process from /proc.
'use strict';
const fs = require('node:fs');
const { execFileSync } = require('node:child_process');

// Parses a positional argument: a whole number >= 1 (>= 0 with zeroOk), or
// dflt when absent; anything else ends the program with exit code 2.
// `prog` names the benchmark in the message; `zeroHint` says what 0 means.
function positiveInt(prog, arg, dflt, what, { zeroOk = false, zeroHint = '' } = {}) {
  if (arg === undefined) return dflt;
  const n = Number(arg);
  if (!Number.isInteger(n) || n < (zeroOk ? 0 : 1)) {
    const want = zeroOk ? `whole number${zeroHint ? ` (${zeroHint})` : ''}` : 'positive whole number';
    console.error(`${prog}: ${what}: expected a ${want}, got "${arg}"`);
    process.exit(2);
  }
  return n;
}

let TICK = 100; // USER_HZ: the unit of utime and stime in /proc/PID/stat
try {
  TICK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 }).trim()) || 100;
} catch {
  // getconf missing: Linux uses 100 everywhere that matters
}

// The CPU seconds (user + system, all threads) a process has used so far.
// Throws when the process is gone.
function cpuSeconds(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK;
}

module.exports = { positiveInt, cpuSeconds, TICK };
