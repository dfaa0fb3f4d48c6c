// The `drifac` command line. Each subcommand returns an exit code: 0 success, 1 when the input
// has errors (reported as diagnostics), 2 for a misused command line.
import { Command, CommanderError } from "commander";
import { checkFile } from "../check/index.ts";
import { docsCommand } from "./docs.ts";
import { exampleCommand } from "./example.ts";
import { fmtCommand } from "./fmt.ts";
import type { Program } from "../check/program.ts";
import { compileCommand } from "./compile.ts";
import { gradcheckCommand, graphCommand, irCommand } from "./ir.ts";
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

  /** Checks a file and returns its one model, or reports why there is none (code 1). */
  const programOf = (file: string, opts: { set: Record<string, string>; model?: string }): Program | null => {
    const r = checkFile(file, { settings: opts.set, model: opts.model });
    printDiagnostics(r.diagnostics, r.sources, io.err);
    if (r.diagnostics.some((d) => d.severity === "error")) {
      code = 1;
      return null;
    }
    const p = r.programs[0];
    if (!p) {
      io.err(`${file}: no model (a library of blocks has no fixed sizes; pick a file with a model)\n`);
      code = 1;
      return null;
    }
    if (r.programs.length > 1) {
      io.err(`${file}: has ${r.programs.length} models; pick one with --model\n`);
      code = 1;
      return null;
    }
    return p;
  };
  const modelOptions = (c: Command) =>
    c.option("--set <name=value,...>", "override model parameters", collectSettings, {}).option("--model <name>", "which model of the file");
  const positiveInt = (what: string) => (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`${what} must be a positive integer, got '${v}'`);
    return n;
  };

  modelOptions(program.command("params"))
    .description("count a model's parameters, per block instance and per block type")
    .argument("<file>", "a .drifa file with a model")
    .option("--json", "print JSON instead of tables")
    .action((file: string, opts: { set: Record<string, string>; model?: string; json?: boolean }) => {
      const p = programOf(file, opts);
      if (!p) return;
      if (opts.json) io.out(`${JSON.stringify({ model: p.model, settings: p.settings, rows: parameterRows(p), total: totalParameters(p) }, null, 2)}\n`);
      else io.out(`${renderParams(p)}\n`);
    });

  modelOptions(program.command("compile"))
    .description("compile a model to WGSL kernels, a TypeScript/JavaScript host module, a trainer and manifest.json")
    .argument("<file>", "a .drifa file with a model")
    .requiredOption("-o, --out <dir>", "output folder (replaced)")
    .option("--batch <n,...>", "batch sizes to plan for (default: the model's train batch)", (v: string) => v.split(",").map(positiveInt("--batch")))
    .option("--report", "print what fused into each kernel of the training step, and what did not and why")
    .option("--no-fuse", "one kernel per IR value (to compare with the fused compile)")
    .action(async (file: string, opts: { set: Record<string, string>; model?: string; out: string; batch?: number[]; report?: boolean; fuse: boolean }) => {
      const p = programOf(file, opts);
      if (p) code = await compileCommand(p, file, opts.out, opts.batch ?? [p.train.batch], io, { fuse: opts.fuse, report: !!opts.report });
    });

  modelOptions(program.command("ir"))
    .description("print the model's IR (training graph; --grad adds the backward pass)")
    .argument("<file>", "a .drifa file with a model")
    .option("--batch <n>", "batch size", positiveInt("--batch"), 2)
    .option("--grad", "include the gradients of the loss")
    .option("--infer", "the inference graph (running statistics, no dropout)")
    .action((file: string, opts: { set: Record<string, string>; model?: string; batch: number; grad?: boolean; infer?: boolean }) => {
      const p = programOf(file, opts);
      if (p) code = irCommand(p, opts, io);
    });

  modelOptions(program.command("graph"))
    .description("write the model's IR as a Graphviz graph")
    .argument("<file>", "a .drifa file with a model")
    .requiredOption("--dot", "Graphviz dot output (the only format)")
    .option("-o, --out <file>", "write to a file instead of stdout")
    .option("--batch <n>", "batch size", positiveInt("--batch"), 2)
    .option("--grad", "include the gradients of the loss")
    .action((file: string, opts: { set: Record<string, string>; model?: string; batch: number; grad?: boolean; out?: string }) => {
      const p = programOf(file, opts);
      if (p) code = graphCommand(p, opts, io);
    });

  modelOptions(program.command("gradcheck"))
    .description("compare autodiff with finite differences (float64) for a sample of parameters of every kind")
    .argument("<file>", "a .drifa file with a model")
    .option("--batch <n>", "batch size", positiveInt("--batch"), 2)
    .option("--seed <n>", "seed for weights, data and the sample", (v) => Number(v), 1)
    .option("--samples <n>", "parameter elements per kind (conv, dense, batchnorm, param)", positiveInt("--samples"), 4)
    .option("--tolerance <x>", "largest relative error accepted", (v) => Number(v), 1e-5)
    .option("-v, --verbose", "print every sampled element")
    .action((file: string, opts: { set: Record<string, string>; model?: string; batch: number; seed: number; samples: number; tolerance: number; verbose?: boolean }) => {
      const p = programOf(file, opts);
      if (p) code = gradcheckCommand(p, opts, io);
    });

  modelOptions(program.command("verify"))
    .description("run one training step on the GPU and in the float64 interpreter; compare loss, gradients, updated parameters, running statistics")
    .argument("<file>", "a .drifa file with a model")
    .option("--batch <n>", "batch size", positiveInt("--batch"), 2)
    .option("--seed <n>", "seed for weights and data", (v) => Number(v), 1)
    .addOption(program.createOption("--tolerance <x>", "largest end-to-end error accepted").argParser((v) => Number(v)).default(1e-3).hideHelp())
    .option("--strict", "require the end-to-end errors within tolerance (no conditioning fallback)")
    .action(async (file: string, opts: { set: Record<string, string>; model?: string; batch: number; seed: number; tolerance: number; strict?: boolean }) => {
      const p = programOf(file, opts);
      if (p) code = await (await import("./verify.ts")).verifyCommand(p, file, opts, io);
    });

  const collectData = (v: string, prev: string[]) => [...prev, v];
  const positiveNumber = (what: string) => (v: string) => {
    const n = Number(v);
    if (!(n > 0) || !Number.isFinite(n)) throw new UsageError(`${what} must be a positive number, got '${v}'`);
    return n;
  };
  modelOptions(program.command("train"))
    .description("compile and train on data folders; evaluate the best checkpoint on the test split (RUN/eval.json, RUN/report/index.html)")
    .argument("<file>", "a .drifa file with a model")
    .option("--data <name=path>", "a data folder for a model input (repeatable)", collectData, [])
    .option("--out <run>", "the run folder: model/, metrics.jsonl, best/last.safetensors, eval.json, report/")
    .option("--epochs <n>", "epochs (default: the model's train section)", positiveInt("--epochs"))
    .option("--batch <n>", "batch size (default: the model's train batch)", positiveInt("--batch"))
    .option("--lr <x>", "base learning rate", positiveNumber("--lr"))
    .option("--seed <n>", "seed of split, initialisation, data order and dropout", (v) => Number(v))
    .option("--json", "one JSON object per epoch on stdout, nothing else")
    .option("--skip-bad", "leave corrupt or unreadable files out (and count them) instead of stopping")
    .option("--resume [run]", "continue the run in --out (or RUN) from its last checkpoint")
    .option("--no-progress", "no progress bar")
    .action(async (file: string, opts: import("./train.ts").TrainCommandOptions) => {
      const p = programOf(file, opts);
      if (p) code = await (await import("./train.ts")).trainCommand(p, file, opts, io);
    });

  program
    .command("predict")
    .description("Monte Carlo dropout predictions of trained runs (an ensemble) with uncertainty per sample")
    .argument("<runs>", "run folders of drifac train, comma-separated")
    .option("--data <name=path>", "a data folder for a model input (repeatable)", collectData, [])
    .option("--mc <t>", "MC-dropout passes per run", positiveInt("--mc"), 10)
    .option("--seed <n>", "dropout seed of the first pass (pass t uses seed + t)", (v) => Number(v), 0)
    .option("--top <n>", "most uncertain cases to list per task", positiveInt("--top"), 10)
    .option("--json", "one JSON object per sample on stdout")
    .option("--skip-bad", "leave corrupt or unreadable files out (and count them)")
    .action(async (runs: string, opts: import("./predict.ts").PredictCommandOptions) => {
      code = await (await import("./predict.ts")).predictCommand(runs, opts, io);
    });

  program
    .command("gradcam")
    .description("Grad-CAM heat maps of a trained run from the last convolution stage of each modality, overlaid on the images")
    .argument("<run>", "a run folder of drifac train")
    .option("--data <name=path>", "a data folder for a model input (repeatable; any subset of the inputs)", collectData, [])
    .requiredOption("--out <dir>", "output folder: <input>/<sample>.png, gradcam.json, index.html")
    .option("--batch <n>", "batch size (default: the run's)", positiveInt("--batch"))
    .option("--limit <n>", "at most n samples per data folder, spread over it", positiveInt("--limit"))
    .option("--task <name>", "explain this task for every modality (default: the task each data set labels)")
    .option("--class <name>", "explain this class of the task instead of each sample's predicted class")
    .option("--alpha <x>", "opacity of the heat map", (v: string) => {
      const x = Number(v);
      if (!(x >= 0 && x <= 1)) throw new UsageError(`--alpha must be between 0 and 1, got '${v}'`);
      return x;
    })
    .option("--skip-bad", "leave corrupt or unreadable files out (and count them)")
    .action(async (run: string, opts: import("./gradcam.ts").GradcamCommandOptions) => {
      code = await (await import("./gradcam.ts")).gradcamCommand(run, opts, io);
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
    .command("synth")
    .description("write a synthetic data set: skin (HAM10000 layout), cervix (SIPaKMeD layout), brats (NIfTI patients)")
    .requiredOption("--out <dir>", "output folder")
    .option("--per-class <k>", "images per class", positiveInt("--per-class"), 20)
    .option("--size <s>", "image side in pixels", positiveInt("--size"), 64)
    .option("--seed <n>", "random seed", (v) => Number(v), 0)
    .action(async (opts: { out: string; perClass: number; size: number; seed: number }) => {
      const { synth } = await import("../../runtime/data/synth.ts");
      const r = await synth(opts.out, { perClass: opts.perClass, size: opts.size, seed: opts.seed });
      io.out(`wrote ${r.counts.skin} skin images (${r.skin}), ${r.counts.cervix} cervix images (${r.cervix}), ${r.counts.bratsPatients} BraTS patients (${r.brats})\n`);
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
