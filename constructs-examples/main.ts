import { join } from 'node:path';
import { App, YamlOutputType } from 'cdk8s';
import { gitopsApplication } from './gitops';
import { MinimalChart } from './minimal';
import { ProductionChart } from './production';

/**
 * Synthesizes every example into its own folder under the cdk8s output directory (`dist/` by default):
 * `minimal/`, `production/`, and `gitops/` (the production platform in `platform/`, the Argo CD Application in
 * `argocd/`). Run it with `npm run synth` (`cdk8s synth --check-upgrade=false`).
 */
export function synthExamples(outdir: string): void {
  const app = (name: string) => new App({ outdir: join(outdir, name), yamlOutputType: YamlOutputType.FILE_PER_CHART });

  const minimal = app('minimal');
  new MinimalChart(minimal, 'platform');
  minimal.synth();

  const production = app('production');
  new ProductionChart(production, 'platform');
  production.synth();

  const platform = app(join('gitops', 'platform'));
  new ProductionChart(platform, 'platform');
  platform.synth();

  const argocd = app(join('gitops', 'argocd'));
  gitopsApplication(argocd);
  argocd.synth();
}

if (require.main === module) synthExamples(process.env.CDK8S_OUTDIR ?? 'dist');
