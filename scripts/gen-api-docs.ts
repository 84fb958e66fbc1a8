/**
 * Writes docs/api.md, the API reference of the construct library: every symbol lib/index.ts exports, read with the
 * TypeScript compiler API. A test compares the committed file with what this produces and lists exported symbols and
 * public members that have no TSDoc comment.
 *
 * Usage: ts-node scripts/gen-api-docs.ts [--check]   (--check: exit 1 when docs/api.md is stale, write nothing)
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as ts from 'typescript';

const ROOT = join(__dirname, '..');
/** Where the reference lives, relative to the repository root. */
export const API_DOCS_PATH = join('docs', 'api.md');

/** What an exported symbol is; also the order of the reference's sections. */
export type ApiKind = 'class' | 'interface' | 'enum' | 'type' | 'function' | 'const' | 'namespace';

/** What a member of an exported symbol is; classes list theirs in this order. */
export type ApiMemberKind = 'static property' | 'static method' | 'constructor' | 'property' | 'method'
  | 'enum member' | 'entry';

/** A member of an exported symbol: a class or interface member, an enum member, or an entry of a const object. */
export interface ApiMember {
  readonly name: string;
  readonly kind: ApiMemberKind;
  /** A property's type, a method's `(params): return type`, an enum member's or entry's value. */
  readonly signature: string;
  readonly optional: boolean;
  /** TSDoc text as Markdown, inherited documentation included; empty when there is none. */
  readonly doc: string;
  /** The `@default` tag's text, when there is one. */
  readonly defaultValue?: string;
}

/** One symbol lib/index.ts exports. */
export interface ApiSymbol {
  readonly name: string;
  readonly kind: ApiKind;
  /** Declaring file, relative to the repository root. */
  readonly file: string;
  readonly doc: string;
  /** Types named by `extends`, as written. */
  readonly extends: readonly string[];
  /** Types named by `implements`, as written. */
  readonly implements: readonly string[];
  /** A function's or type alias's declaration, or a const's value when it is a literal. */
  readonly signature?: string;
  readonly members: readonly ApiMember[];
}

const SECTIONS: ReadonlyArray<[ApiKind, string]> = [
  ['class', 'Classes'], ['interface', 'Interfaces'], ['enum', 'Enums'], ['type', 'Type aliases'],
  ['function', 'Functions'], ['const', 'Constants'], ['namespace', 'Namespaces'],
];
const MEMBER_ORDER: readonly ApiMemberKind[] = ['static property', 'static method', 'constructor', 'property', 'method'];

/** Plain code-point order: the same on every machine, unlike localeCompare. */
function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** The compiler API reports symbol and modifier flags as bit sets. */
function hasFlag(flags: number, flag: number): boolean {
  // eslint-disable-next-line no-bitwise
  return (flags & flag) !== 0;
}

function hasTag(node: ts.Node, tag: string): boolean {
  return ts.getJSDocTags(node).some((t) => t.tagName.text === tag);
}

/** A value readers understand from its text: a literal, or a template string (e.g. an image tag with the version). */
function isLiteral(node: ts.Expression): boolean {
  return ts.isStringLiteral(node) || ts.isNumericLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node) || ts.isTemplateExpression(node)
    || node.kind === ts.SyntaxKind.TrueKeyword || node.kind === ts.SyntaxKind.FalseKeyword
    || (ts.isPrefixUnaryExpression(node) && ts.isNumericLiteral(node.operand));
}

function withoutAsConst(node: ts.Expression): ts.Expression {
  return ts.isAsExpression(node) ? node.expression : node;
}

/** Reads the exported API of lib/index.ts. One ts.Program over lib/ (a few seconds, most of it cdk8s-plus typings). */
export function loadApi(root: string = ROOT): ApiSymbol[] {
  const configPath = join(root, 'tsconfig.json');
  const config = ts.parseJsonConfigFileContent(ts.readConfigFile(configPath, ts.sys.readFile).config, ts.sys, root);
  const program = ts.createProgram([join(root, 'lib', 'index.ts')], config.options);
  const checker = program.getTypeChecker();
  const index = program.getSourceFile(join(root, 'lib', 'index.ts'));
  const moduleSymbol = index && checker.getSymbolAtLocation(index);
  if (!moduleSymbol) throw new Error(`cannot read ${join(root, 'lib', 'index.ts')}`);
  const exported = checker.getExportsOfModule(moduleSymbol);
  const names = new Set(exported.map((symbol) => symbol.name));

  /** `{@link X.y}` becomes a link to X's section when X is exported, else code. */
  const markdown = (parts: readonly ts.SymbolDisplayPart[]): string => parts.map((part) => {
    if (part.kind === 'link') return '';
    if (part.kind !== 'linkName') return part.text;
    const target = part.text.split('.')[0];
    return names.has(target) ? `[\`${part.text}\`](#${target.toLowerCase()})` : `\`${part.text}\``;
  }).join('').trim();

  const docOf = (symbol: ts.Symbol | undefined): string => (symbol ? markdown(symbol.getDocumentationComment(checker)) : '');
  const defaultOf = (symbol: ts.Symbol | undefined): string | undefined => {
    const tag = symbol?.getJsDocTags(checker).find((t) => t.name === 'default');
    return tag && oneLine(ts.displayPartsToString(tag.text));
  };
  const symbolOf = (node: ts.NamedDeclaration): ts.Symbol | undefined => (node.name ? checker.getSymbolAtLocation(node.name) : undefined);
  const typeText = (node: ts.Node & { type?: ts.TypeNode }): string =>
    oneLine(node.type ? node.type.getText() : checker.typeToString(checker.getTypeAtLocation(node)));
  const params = (node: ts.SignatureDeclaration): string => node.parameters.map((p) =>
    `${p.dotDotDotToken ? '...' : ''}${p.name.getText()}${p.questionToken || p.initializer ? '?' : ''}: ${typeText(p)}`).join(', ');
  const signature = (node: ts.SignatureDeclaration): string => {
    const typeParameters = node.typeParameters ? `<${node.typeParameters.map((p) => p.getText()).join(', ')}>` : '';
    const returns = node.type ? node.type.getText()
      : checker.typeToString(checker.getReturnTypeOfSignature(checker.getSignatureFromDeclaration(node)!));
    return oneLine(`${typeParameters}(${params(node)}): ${returns}`);
  };
  const member = (node: ts.NamedDeclaration, kind: ApiMemberKind, text: string, optional = false): ApiMember => {
    const symbol = symbolOf(node);
    return { name: node.name?.getText() ?? '', kind, signature: text, optional, doc: docOf(symbol), defaultValue: defaultOf(symbol) };
  };
  const isPublic = (node: ts.Declaration): boolean => !hasTag(node, 'internal')
    && !hasFlag(ts.getCombinedModifierFlags(node), ts.ModifierFlags.NonPublicAccessibilityModifier)
    && !(ts.isClassElement(node) && node.name !== undefined && ts.isPrivateIdentifier(node.name));

  const classMembers = (node: ts.ClassDeclaration): ApiMember[] => {
    const members: ApiMember[] = [];
    for (const element of node.members.filter(isPublic)) {
      const isStatic = hasFlag(ts.getCombinedModifierFlags(element), ts.ModifierFlags.Static);
      if (ts.isConstructorDeclaration(element)) {
        members.push({ name: 'constructor', kind: 'constructor', signature: `new ${node.name!.text}(${params(element)})`, optional: false, doc: '' });
      }
      if (ts.isPropertyDeclaration(element)) {
        members.push(member(element, isStatic ? 'static property' : 'property', typeText(element), !!element.questionToken));
      } else if (ts.isGetAccessorDeclaration(element)) {
        members.push(member(element, isStatic ? 'static property' : 'property', typeText(element)));
      } else if (ts.isMethodDeclaration(element)) {
        members.push(member(element, isStatic ? 'static method' : 'method', signature(element)));
      }
    }
    // Parameter properties (`public readonly x` in the constructor) are properties too, even of a private constructor.
    const constructor = node.members.find(ts.isConstructorDeclaration);
    for (const parameter of constructor?.parameters ?? []) {
      if (ts.isParameterPropertyDeclaration(parameter, constructor!) && isPublic(parameter)) {
        members.push(member(parameter, 'property', typeText(parameter), !!parameter.questionToken));
      }
    }
    return members.sort((a, b) => MEMBER_ORDER.indexOf(a.kind) - MEMBER_ORDER.indexOf(b.kind));
  };

  const interfaceMembers = (node: ts.InterfaceDeclaration): ApiMember[] => node.members.flatMap((element) => {
    if (ts.isPropertySignature(element)) return [member(element, 'property', typeText(element), !!element.questionToken)];
    if (ts.isMethodSignature(element)) return [member(element, 'method', signature(element), !!element.questionToken)];
    return [];
  });

  const describeSymbol = (exportSymbol: ts.Symbol): ApiSymbol | undefined => {
    const symbol = hasFlag(exportSymbol.flags, ts.SymbolFlags.Alias) ? checker.getAliasedSymbol(exportSymbol) : exportSymbol;
    const node = symbol.declarations?.[0];
    if (!node) throw new Error(`lib/index.ts exports ${exportSymbol.name}, which has no declaration`);
    if (!ts.isSourceFile(node) && hasTag(node, 'internal')) return undefined;
    const file = relative(root, node.getSourceFile().fileName).split('\\').join('/');
    const base = { name: exportSymbol.name, file, doc: docOf(symbol), extends: [], implements: [], members: [] };
    const heritage = (declaration: ts.ClassDeclaration | ts.InterfaceDeclaration) => {
      const types = (token: ts.SyntaxKind) => (declaration.heritageClauses ?? []).filter((clause) => clause.token === token)
        .flatMap((clause) => clause.types.map((type) => oneLine(type.getText())));
      return { extends: types(ts.SyntaxKind.ExtendsKeyword), implements: types(ts.SyntaxKind.ImplementsKeyword) };
    };

    if (ts.isSourceFile(node)) {
      // Generated classes (lib/imports): listed as one namespace, not member by member.
      return { ...base, kind: 'namespace', doc: 'The classes `cdk8s import` generated from the KServe CRDs (`npm run import-crds`).' };
    }
    if (ts.isClassDeclaration(node)) return { ...base, kind: 'class', ...heritage(node), members: classMembers(node) };
    if (ts.isInterfaceDeclaration(node)) return { ...base, kind: 'interface', ...heritage(node), members: interfaceMembers(node) };
    if (ts.isEnumDeclaration(node)) {
      return {
        ...base,
        kind: 'enum',
        members: node.members.map((m) => member(m, 'enum member', m.initializer?.getText() ?? String(checker.getConstantValue(m)))),
      };
    }
    if (ts.isTypeAliasDeclaration(node)) return { ...base, kind: 'type', signature: oneLine(`type ${node.name.text} = ${node.type.getText()}`) };
    if (ts.isFunctionDeclaration(node)) return { ...base, kind: 'function', signature: `function ${node.name!.text}${signature(node)}` };
    if (ts.isVariableDeclaration(node)) {
      const value = node.initializer && withoutAsConst(node.initializer);
      if (value && isLiteral(value)) return { ...base, kind: 'const', signature: `const ${exportSymbol.name} = ${value.getText()}` };
      // An object of literals (the contract's names, ports, images) is listed entry by entry with its values.
      const entries = value && ts.isObjectLiteralExpression(value) ? value.properties : undefined;
      if (entries?.every((p) => ts.isPropertyAssignment(p) && isLiteral(p.initializer))) {
        return { ...base, kind: 'const', members: entries.map((p) => member(p, 'entry', (p as ts.PropertyAssignment).initializer.getText())) };
      }
      return { ...base, kind: 'const', signature: node.type ? `const ${exportSymbol.name}: ${typeText(node)}` : undefined };
    }
    throw new Error(`lib/index.ts exports ${exportSymbol.name} as a ${ts.SyntaxKind[node.kind]}, which ${relative(root, __filename)} cannot describe`);
  };

  return exported.map(describeSymbol).filter((entry): entry is ApiSymbol => entry !== undefined).sort(byName);
}

/** Exported symbols, public members and interface properties without TSDoc, as `file: Symbol.member`. */
export function missingDocs(api: readonly ApiSymbol[]): string[] {
  return api.flatMap((symbol) => [
    ...(symbol.doc ? [] : [`${symbol.file}: ${symbol.name}`]),
    // Constructors are described by their class, const entries by their name and value.
    ...symbol.members.filter((m) => !m.doc && m.kind !== 'constructor' && m.kind !== 'entry').map((m) => `${symbol.file}: ${symbol.name}.${m.name}`),
  ]);
}

function cell(text: string): string {
  return oneLine(text).replace(/\|/g, '\\|');
}

function code(text: string): string {
  return text ? `\`${text}\`` : '';
}

/** `@default - prose` is prose; any other default is a value, possibly followed by `(prose)`. */
function defaultCell(m: ApiMember): string {
  if (m.defaultValue === undefined) return m.optional ? '' : '*required*';
  if (m.defaultValue.startsWith('- ')) return cell(m.defaultValue.slice(2));
  const [, value, remark] = /^(.+?)( \(.*\))?$/.exec(m.defaultValue)!;
  return cell(code(value) + (remark ?? ''));
}

function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string[] {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.join(' | ')} |`)];
}

function renderMembers(symbol: ApiSymbol): string[] {
  const lines: string[] = [];
  const of = (kind: ApiMemberKind) => symbol.members.filter((m) => m.kind === kind);
  const name = (m: ApiMember) => cell(code(`${m.name}${m.optional ? '?' : ''}`));
  const methods = (title: string, members: readonly ApiMember[], prefix: string) => {
    if (members.length === 0) return;
    // The description goes on its own line (one paragraph with the signature) to keep lines short.
    lines.push(`**${title}**`, '', ...members.flatMap((m) => [`- ${code(`${prefix}${m.name}${m.signature}`)}${m.doc ? ' —' : ''}`,
      ...(m.doc ? [`  ${oneLine(m.doc)}`] : [])]), '');
  };
  const properties = (title: string, members: readonly ApiMember[]) => {
    if (members.length === 0) return;
    lines.push(`**${title}**`, '', ...table(['name', 'type', 'description'],
      members.map((m) => [name(m), cell(code(m.signature)), cell(m.doc)])), '');
  };

  switch (symbol.kind) {
    case 'class':
      properties('Static properties', of('static property'));
      methods('Static methods', of('static method'), `${symbol.name}.`);
      for (const ctor of of('constructor')) lines.push('```ts', ctor.signature, '```', '');
      properties('Properties', of('property'));
      methods('Methods', of('method'), '');
      break;
    case 'interface':
      if (of('property').length > 0) {
        lines.push(...table(['property', 'type', 'default', 'description'],
          of('property').map((m) => [name(m), cell(code(m.signature)), defaultCell(m), cell(m.doc)])), '');
      }
      methods('Methods', of('method'), '');
      break;
    case 'enum':
      lines.push(...table(['member', 'value', 'description'], symbol.members.map((m) => [name(m), cell(code(m.signature)), cell(m.doc)])), '');
      break;
    case 'const':
      if (symbol.members.length > 0) {
        lines.push(...table(['entry', 'value', 'description'], symbol.members.map((m) => [name(m), cell(code(m.signature)), cell(m.doc)])), '');
      }
      break;
    default:
      break;
  }
  return lines;
}

/** The Markdown of docs/api.md; the same for the same sources. */
export function renderApiDocs(api: readonly ApiSymbol[] = loadApi()): string {
  const names = new Set(api.map((symbol) => symbol.name));
  const typeRef = (type: string) => (names.has(type) ? `[\`${type}\`](#${type.toLowerCase()})` : code(type));
  const heritage = (keyword: string, types: readonly string[]) => (types.length > 0 ? `, ${keyword} ${types.map(typeRef).join(', ')}` : '');
  const lines = [
    '# cdk8s-modelmesh API reference',
    '',
    '> Generated from `lib/index.ts` by `npm run docs` (`scripts/gen-api-docs.ts`). Do not edit by hand: a test fails',
    '> when this file differs from what the script generates.',
    '',
  ];
  for (const [kind, title] of SECTIONS) {
    const symbols = api.filter((symbol) => symbol.kind === kind);
    if (symbols.length === 0) continue;
    lines.push(`## ${title}`, '');
    for (const symbol of symbols) {
      const clauses = heritage('extends', symbol.extends) + heritage('implements', symbol.implements);
      lines.push(`### ${symbol.name}`, '', `*${kind}*${clauses} — \`${symbol.file}\``, '');
      if (symbol.doc) lines.push(symbol.doc, '');
      if (symbol.signature) lines.push('```ts', symbol.signature, '```', '');
      lines.push(...renderMembers(symbol));
    }
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

/** Why `committed` is not the current reference (naming the first differing line), or undefined when it is. */
export function apiDocsProblem(api: readonly ApiSymbol[], committed: string | undefined): string | undefined {
  const fresh = renderApiDocs(api);
  if (committed === fresh) return undefined;
  if (committed === undefined) return 'docs/api.md is missing; run npm run docs';
  const [a, b] = [committed.split('\n'), fresh.split('\n')];
  const line = a.findIndex((text, i) => text !== b[i]);
  return `docs/api.md is stale; run npm run docs (first difference at line ${(line < 0 ? a.length : line) + 1})`;
}

if (require.main === module) {
  const api = loadApi();
  const out = join(ROOT, API_DOCS_PATH);
  const undocumented = missingDocs(api);
  if (undocumented.length > 0) console.error(`warning: no TSDoc comment on\n  ${undocumented.join('\n  ')}`);
  if (process.argv.includes('--check')) {
    const problem = apiDocsProblem(api, existsSync(out) ? readFileSync(out, 'utf8') : undefined);
    if (problem) {
      console.error(problem);
      process.exit(1);
    }
  } else {
    writeFileSync(out, renderApiDocs(api));
  }
}
