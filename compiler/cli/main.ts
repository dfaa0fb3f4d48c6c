// The `drifac` command line. Each subcommand returns an exit code: 0 success, 1 when the input
// has errors (reported as diagnostics), 2 for a misused command line.
import { Command, CommanderError } from "commander";
import { checkFile } from "../check/index.ts";
import { docsCommand } from "./docs.ts";
import { exampleCommand } from "./example.ts";
import { fmtCommand } from "./fmt.ts";
import { renderParams, totalParameters, parameterRows } from "./params.ts";
import { printDiagnostics, formatCount } from "./report.ts";
import { collectSettings, UsageError } from "./settings.ts";

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const defaultIo: Io = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  let code = 0;
  const program = new Command("drifac")
    .description("the drifa compiler: check, measure and format .drifa models")
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError("(run drifac --help for usage)");

  program
    .command("check")
    .description("check files: syntax, imports, names, shapes; prints a summary per model")
    .argument("<files...>", ".drifa files")
    .option("--set <name=value,...>", "override model parameters", collectSettings, {})
    .option("--model <name>", "check only this model of the file")
    .action((files: string[], opts: { set: Record<string, string>; model?: string }) => {
      for (const file of files) {
        const r = checkFile(file, { settings: opts.set, model: opts.model });
        printDiagnostics(r.diagnostics, r.sources, io.err);
        if (r.diagnostics.some((d) => d.severity === "error")) {
          code = 1;
          continue;
        }
        if (r.programs.length === 0) {
          io.out(`${r.entry?.display ?? file}: ok (${r.entry?.file.blocks.length ?? 0} blocks)\n`);
        }
        for (const p of r.programs) {
          const ops = p.nodes.filter((n) => n.op !== "param" && n.op !== "const" && n.op !== "input").length;
          const tasks = p.tasks.map((t) => `${t.name} (${t.classes.length} classes, weight ${Number(t.weight.toPrecision(4))})`).join(", ");
          io.out(`${p.file}: model ${p.model} ok: ${p.inputs.length} inputs, ${formatCount(totalParameters(p))} parameters, ${ops} operations; tasks ${tasks || "none"}\n`);
        }
      }
    });

  program
    .command("params")
    .description("count a model's parameters, per block instance and per block type")
    .argument("<file>", "a .drifa file with a model")
    .option("--set <name=value,...>", "override model parameters", collectSettings, {})
    .option("--model <name>", "which model of the file")
    .option("--json", "print JSON instead of tables")
    .action((file: string, opts: { set: Record<string, string>; model?: string; json?: boolean }) => {
      const r = checkFile(file, { settings: opts.set, model: opts.model });
      printDiagnostics(r.diagnostics, r.sources, io.err);
      if (r.diagnostics.some((d) => d.severity === "error")) {
        code = 1;
        return;
      }
      const p = r.programs[0];
      if (!p) {
        io.err(`${file}: no model to count (a library of blocks has no fixed sizes)\n`);
        code = 1;
        return;
      }
      if (opts.json) io.out(`${JSON.stringify({ model: p.model, settings: p.settings, rows: parameterRows(p), total: totalParameters(p) }, null, 2)}\n`);
      else io.out(`${renderParams(p)}\n`);
    });

  program
    .command("fmt")
    .description("format .drifa files in place (with --check: only report files that are not formatted)")
    .argument("<files...>", ".drifa files")
    .option("--check", "do not write; exit 1 if a file would change")
    .action(async (files: string[], opts: { check?: boolean }) => {
      code = await fmtCommand(files, !!opts.check, io);
    });

  program
    .command("docs")
    .description("write docs/grammar.html (syntax diagrams of the grammar)")
    .option("-o, --out <file>", "output file", "docs/grammar.html")
    .action((opts: { out: string }) => {
      code = docsCommand(opts.out, io);
    });

  program
    .command("example")
    .description("the quickstart's main job on the shipped models")
    .action(async () => {
      code = await exampleCommand(io);
    });

  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof UsageError) {
      io.err(`drifac: ${e.message}\n`);
      return 2;
    }
    io.err(`drifac: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
    if (process.env.DRIFA_DEBUG && e instanceof Error) io.err(`${e.stack}\n`);
    return 70;
  }
  return code;
}
