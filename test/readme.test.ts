import { execFile } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'
import { entries } from '../rollup.config.mjs'
import { REPLAY_COMMAND, SEARCH_COMMAND } from './races/replay.js'
import { serve } from './support/loopback.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { import?: { default: string } }> }

/**
 * Names a README block may use without declaring them, as a reader would assume them: their
 * types for the type check, and the values a run against the local server gives them (none: a
 * block using that name is only type-checked).
 */
const PRELUDE: Record<string, { type: string; value?: string }> = {
  tokenUrl: { type: 'string', value: 'process.env.TOKEN_URL' },
  clientId: { type: 'string', value: "'demo-client'" },
  refreshToken: { type: 'string | undefined', value: "'demo-refresh-token'" },
  client: { type: "import('oauth-refresh').RefreshClient" },
  // Node's, as @types/node types the part READMEs use; the whole of it would make the check slow.
  process: { type: '{ env: Record<string, string | undefined> }', value: 'process' },
  // Deno's global, the part the README uses, as Deno's own types would have it.
  Deno: { type: "{ openKv(path?: string): Promise<import('oauth-refresh/deno-kv').DenoKVLike>; env: { get(name: string): string | undefined } }" },
  // Extension globals, as @types/chrome would type the part the SDK uses.
  chrome: { type: "{ storage: Record<'local' | 'session' | 'sync', import('oauth-refresh/webextension').StorageAreaLike> }" },
  browser: { type: "{ storage: Record<'local' | 'session' | 'sync', import('oauth-refresh/webextension').StorageAreaLike> }" },
}

interface Block {
  /** `README.md:38`: the file, relative to the repository root, and the line of the opening fence. */
  where: string
  /** The block's file for the checks: at the repository root, where the READMEs' commands run. */
  file: string
  code: string
  js: boolean
}

const READMES = ['README.md', 'bench/README.md', ...readdirSync(join(ROOT, 'docs')).map((name) => `docs/${name}`), ...readdirSync(join(ROOT, 'examples')).map((name) => `examples/${name}/README.md`)].filter((path) => existsSync(join(ROOT, path)))

/** Every ts/js block of the READMEs, but for those marked `ts fragment`, which cannot stand alone. */
function blocks(): Block[] {
  const found: Block[] = []
  for (const readme of READMES) {
    const text = readFileSync(join(ROOT, readme), 'utf8')
    for (const match of text.matchAll(/^```(ts|typescript|js|javascript|mjs)\b([^\n]*)\n([\s\S]*?)^```/gm)) {
      if (/\bfragment\b/.test(match[2]!)) continue
      const line = text.slice(0, match.index).split('\n').length
      const js = !match[1]!.startsWith('t')
      found.push({ where: `${readme}:${line}`, file: join(ROOT, `${readme.replaceAll('/', '-')}-${line}.${js ? 'mjs' : 'ts'}`), code: match[3]!, js })
    }
  }
  return found
}

/** The package's own entries, by the specifiers a user writes (Deno's `npm:` ones too). */
function packagePaths(): Record<string, string[]> {
  const paths: Record<string, string[]> = {}
  for (const [name, source] of Object.entries(entries as Record<string, string>)) {
    const specifier = name === 'index' ? 'oauth-refresh' : `oauth-refresh/${name}`
    paths[specifier] = paths[`npm:${specifier}`] = [join(ROOT, source)]
  }
  return paths
}

/** Type-checks every block strictly, as modules, with the prelude's names declared globally. */
function typeErrors(all: Block[]): string[] {
  const prelude = join(ROOT, 'readme-prelude.d.ts')
  const virtual = new Map([[prelude, Object.entries(PRELUDE).map(([name, { type }]) => `declare const ${name}: ${type}`).join('\n')]])
  for (const block of all) virtual.set(block.file, block.code)
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    moduleDetection: ts.ModuleDetectionKind.Force,
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'],
    types: [],
    allowJs: true,
    checkJs: true,
    skipLibCheck: true,
    baseUrl: ROOT,
    paths: packagePaths(),
  }
  const host = ts.createCompilerHost(options)
  const { getSourceFile, fileExists, readFile } = host
  host.fileExists = (name) => virtual.has(name) || fileExists.call(host, name)
  host.readFile = (name) => virtual.get(name) ?? readFile.call(host, name)
  host.getSourceFile = (name, language, ...rest) => {
    const text = virtual.get(name)
    return text === undefined ? getSourceFile.call(host, name, language, ...rest) : ts.createSourceFile(name, text, language, true)
  }
  const program = ts.createProgram([...virtual.keys()], options, host)
  const where = new Map(all.map((block) => [block.file, block.where]))
  // The blocks' own diagnostics only: checking the sources they import is the typecheck script's job.
  return all
    .flatMap((block) => ts.getPreEmitDiagnostics(program, program.getSourceFile(block.file)))
    .map((diagnostic) => {
      const { line } = diagnostic.file!.getLineAndCharacterOfPosition(diagnostic.start!)
      return `${where.get(diagnostic.file!.fileName)} +${line + 1}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`
    })
}

/** Whether `code` uses the variable `name` without declaring it: not as a property (`server.tokenUrl`) or a key (`tokenUrl: …`). */
const usesName = (code: string, name: string) =>
  !new RegExp(`(?:const|let|var)\\s+${name}\\b`).test(code) && new RegExp(`(?<![.\\w$])${name}\\b(?!\\s*:)`).test(code)

/**
 * A block runs in Node against the local server when nothing in it needs another runtime or a
 * real provider: no other host than loopback, only Node-resolvable imports, and prelude names
 * that have a value.
 */
function runnable(block: Block): boolean {
  if (/example\.com|\bDeno\b|\benv\.[A-Z]/.test(block.code)) return false
  if (/from\s+['"](npm:|jsr:|cloudflare:|https?:)/.test(block.code)) return false
  return Object.entries(PRELUDE).every(([name, { value }]) => value !== undefined || !usesName(block.code, name))
}

/** The block as a Node module: TypeScript stripped, the package's specifiers pointed at dist/, prelude values bound. */
function asModule(block: Block): string {
  const js = block.js ? block.code : ts.transpileModule(block.code, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, verbatimModuleSyntax: false } }).outputText
  const resolved = js.replace(/(from\s+|import\s*\(\s*)(['"])(oauth-refresh(?:\/[\w-]+)?)\2/g, (_, head: string, quote: string, specifier: string) => {
    const target = pkg.exports[specifier.replace('oauth-refresh', '.')]?.import?.default
    return target ? `${head}${quote}${pathToFileURL(join(ROOT, target)).href}${quote}` : `${head}${quote}${specifier}${quote}`
  })
  const bound = Object.entries(PRELUDE)
    // A global that Node has (`process`) needs no binding.
    .filter(([name, { value }]) => value !== name && usesName(block.code, name))
    .map(([name, { value }]) => `const ${name} = ${value}\n`)
  return bound.join('') + resolved
}

const ALL = blocks()

/** The scripts `npm run` finds for a README: the root package's, and those of the example's own package.json. */
function scripts(readme: string): string[] {
  const manifests = [join(ROOT, 'package.json'), join(ROOT, dirname(readme), 'package.json')].filter((path) => existsSync(path))
  return manifests.flatMap((path) => Object.keys((JSON.parse(readFileSync(path, 'utf8')) as { scripts?: Record<string, string> }).scripts ?? {}))
}

describe('README commands', () => {
  it.each(READMES)('%s runs only npm scripts that exist', (readme) => {
    const named = [...readFileSync(join(ROOT, readme), 'utf8').matchAll(/\bnpm run ([\w:-]+)/g)].map((match) => match[1]!)
    expect(named.filter((name) => !scripts(readme).includes(name))).toEqual([])
  })

  it("gives the race suite's commands as the suite prints them", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    expect(readme).toContain(REPLAY_COMMAND)
    expect(readme).toContain(SEARCH_COMMAND)
  })
})

describe('README code blocks', () => {
  it('are found in README.md and every example README', () => {
    expect(ALL.filter((block) => block.where.startsWith('README.md:')).length).toBeGreaterThan(5)
  })

  // A whole compile: under load it takes longer than a unit test's default timeout.
  it('type-check strictly', () => {
    expect(typeErrors(ALL)).toEqual([])
  }, 120_000)

  it.each(ALL.filter(runnable).map((block) => [block.where, block] as const))('%s runs in Node against the local server', async (_, block) => {
    const server = await serve()
    // The kill timeout only keeps a hanging block from hanging the suite; no timing is asserted.
    const run = promisify(execFile)(process.execPath, ['--input-type=module', '-e', asModule(block)], {
      cwd: ROOT,
      env: { ...process.env, TOKEN_URL: server.tokenUrl },
      timeout: 15_000,
      killSignal: 'SIGKILL',
    })
    await expect(run.then(() => 'exited 0', (error: Error) => error.message)).resolves.toBe('exited 0')
  })
})
