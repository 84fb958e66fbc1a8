import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as cdk8s from 'cdk8s';
import * as ts from 'typescript';
import { allProblems } from './manifests';
import * as lib from '../../../lib';

/** The README's example chart must compile against the library and synthesize valid objects. */
test('the README example chart synthesizes valid objects', () => {
  const readme = readFileSync(join(__dirname, '..', '..', '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Declaring a platform'));
  const source = /```ts\n([\s\S]*?)```/.exec(section)![1].replace('app.synth();', 'result.objects = cdk8s.Testing.synth(chart);');
  const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText;
  const modules: Record<string, unknown> = { 'cdk8s': cdk8s, 'cdk8s-modelmesh': lib };
  const result: { objects?: any[] } = {};
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  new Function('require', 'exports', 'result', 'cdk8s', js)((name: string) => modules[name], {}, result, cdk8s);
  expect(result.objects?.map((o) => o.kind)).toEqual(expect.arrayContaining(['StatefulSet', 'Deployment', 'ServiceMonitor', 'HorizontalPodAutoscaler']));
  expect(allProblems(result.objects!)).toEqual([]);
});
