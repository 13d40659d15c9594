// ${VAR} and ${VAR:-default} interpolation over the raw YAML text, before parsing, so values keep their YAML types.
export interface InterpolationError {
  offset: number;
  message: string;
}

/** $$ (a literal $), ${NAME}, ${NAME:-default}, or any other "${", which is an error rather than text taken literally. */
const REF = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{/g;

export function interpolate(
  text: string,
  env: Readonly<Record<string, string | undefined>>,
): { text: string; errors: InterpolationError[]; offsetMap: (out: number) => number } {
  const errors: InterpolationError[] = [];
  // Each replacement shifts later offsets; keep the shifts so an error in the output maps back to the file.
  const shifts: Array<{ at: number; delta: number }> = [];
  let delta = 0;
  const out = text.replace(REF, (match: string, name: string | undefined, dflt: string | undefined, offset: number) => {
    let value: string;
    if (match === '$$') value = '$';
    else if (match === '${') {
      errors.push({ offset, message: 'invalid ${...} reference: use ${NAME} or ${NAME:-default} (and $$ for a literal $)' });
      value = match;
    } else {
      const v = env[name!];
      if (v !== undefined && v !== '') value = v;
      else if (dflt !== undefined) value = dflt;
      else {
        errors.push({ offset, message: `environment variable ${name} is not set (use \${${name}:-default} for a default)` });
        value = '';
      }
    }
    delta += value.length - match.length;
    shifts.push({ at: offset + match.length + delta, delta });
    return value;
  });
  const offsetMap = (o: number): number => {
    let d = 0;
    for (const s of shifts) if (o >= s.at) d = s.delta;
    return o - d;
  };
  return { text: out, errors, offsetMap };
}
