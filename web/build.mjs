// Builds dist/ from src/: the SDK and the bar as ES modules with type declarations under
// dist/sdk (served at /sdk/), the agent desktop under dist/app (served at / and /app/), and
// the API reference page under dist/docs (served at /docs).
// dist/ is committed and embedded by the Go package web; CI rebuilds it and fails on any
// difference, so run `npm ci && npm run build` after changing src/.
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { build } from "esbuild";

const here = new URL(".", import.meta.url).pathname;
process.chdir(here);

// Type-check everything first.
execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], { stdio: "inherit" });

rmSync("dist", { recursive: true, force: true });
mkdirSync("dist/app", { recursive: true });

const banner = { js: "// Built from web/src by `npm run build` (esbuild); do not edit." };
const common = { loader: { ".css": "text" }, bundle: true, format: "esm", target: "es2022", platform: "browser", charset: "utf8", legalComments: "none", logLevel: "warning", banner };

// Modules served separately stay separate, so that a page loading both the SDK and the bar
// shares one SDK (one set of classes: instanceof CommandError works across them).
const external = (map) => ({
  name: "served-modules",
  setup(b) {
    b.onResolve({ filter: /callbridge(-bar)?\.js$/ }, (args) => {
      if (args.kind === "entry-point") return undefined;
      const name = args.path.split("/").pop();
      return map[name] ? { path: map[name], external: true } : undefined;
    });
  },
});

await build({ ...common, entryPoints: ["src/sdk/callbridge.ts"], outfile: "dist/sdk/callbridge.js" });
await build({ ...common, entryPoints: ["src/sdk/callbridge-bar.ts"], outfile: "dist/sdk/callbridge-bar.js",
  plugins: [external({ "callbridge.js": "./callbridge.js" })] });
await build({ ...common, entryPoints: ["src/app/desktop.ts"], outfile: "dist/app/desktop.js",
  plugins: [external({ "callbridge.js": "/sdk/callbridge.js", "callbridge-bar.js": "/sdk/callbridge-bar.js" })] });

// Type declarations of the SDK and the bar, next to their modules.
execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.sdk.json"], { stdio: "inherit" });

for (const f of ["index.html", "desktop.css"]) cpSync("src/app/" + f, "dist/app/" + f);

// The rendered API reference at /docs: Swagger UI (package swagger-ui-dist, pinned in
// package.json) served by callbridge itself, reading /v1/openapi.json.
mkdirSync("dist/docs", { recursive: true });
for (const f of ["index.html", "init.js"]) cpSync("src/docs/" + f, "dist/docs/" + f);
for (const f of ["swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE"]) {
  cpSync("node_modules/swagger-ui-dist/" + f, "dist/docs/" + f);
}
console.log("built dist/");
