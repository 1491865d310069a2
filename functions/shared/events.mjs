// What a built-in is asked to work on: `{"path": "/beamtime/x.nxs", …}` from a direct call, or a
// CloudEvents 1.0 storage event from a trigger, whose `subject` is the file's path. Options sit beside
// the path (the manifest's params are merged under the event either way).

/** The namespace path an event names; throws a TypeError that says what was expected. */
export function pathOf(event) {
  if (event === null || typeof event !== 'object' || Array.isArray(event)) {
    throw new TypeError(`expected {"path": "/dir/file"} or a CloudEvent with "subject", not ${describe(event)}`);
  }
  let path;
  if (typeof event.path === 'string') path = event.path;
  else if (typeof event.specversion === 'string' && typeof event.subject === 'string') path = event.subject;
  else if (typeof event.specversion === 'string') throw new TypeError('the CloudEvent has no "subject" naming the file');
  else throw new TypeError('expected {"path": "/dir/file"} or a CloudEvent with "subject"; the input has neither');
  if (!path.startsWith('/')) throw new TypeError(`the path must be absolute (start with "/"): ${JSON.stringify(path)}`);
  if (path.split('/').includes('..')) throw new TypeError(`the path must not contain "..": ${JSON.stringify(path)}`);
  return path;
}

/** An optional integer option, with its bounds checked. */
export function intOption(event, name, { min, max, fallback }) {
  const value = event?.[name];
  if (value === undefined || value === null) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`"${name}" must be an integer from ${min} to ${max}, not ${JSON.stringify(value)}`);
  }
  return value;
}

/** An optional number option (finite), with its bounds checked. */
export function numberOption(event, name, { min, max, fallback }) {
  const value = event?.[name];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new RangeError(`"${name}" must be a number from ${min} to ${max}, not ${JSON.stringify(value)}`);
  }
  return value;
}

/** The directory and file name of a namespace path. */
export function splitPath(path) {
  const slash = path.lastIndexOf('/');
  return { dir: path.slice(0, slash) || '/', name: path.slice(slash + 1) };
}

function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? `the string ${JSON.stringify(value.slice(0, 80))}` : `a ${typeof value}`;
}
