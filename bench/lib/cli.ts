// The command line of the measuring scripts: options parsed strictly, every problem a usage error
// (exit 2) that names the option, and --help printing the usage (exit 0).
import { parseArgs, type ParseArgsConfig } from 'node:util';

export function parseCommandLine<O extends NonNullable<ParseArgsConfig['options']>>(options: O, help: string) {
  const usage = (message: string): never => {
    process.stderr.write(`Error: ${message}\n\n${help}\n`);
    process.exit(2);
  };
  const parse = () => {
    try {
      return parseArgs({ options, allowPositionals: false }).values;
    } catch (err) {
      return usage((err as Error).message);
    }
  };
  const values = parse();
  if ((values as Record<string, unknown>).help) {
    process.stdout.write(`${help}\n`);
    process.exit(0);
  }
  /** A number option within [min, max] (an integer unless `integer` is false). */
  const numberOption = (name: keyof O & string, min: number, max: number, integer = true): number => {
    const value = Number((values as Record<string, unknown>)[name]);
    if (!Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
      usage(`--${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
    }
    return value;
  };
  return { args: values, usage, numberOption };
}
