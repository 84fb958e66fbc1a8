import { ApiObject, App, Chart } from 'cdk8s';
import { Construct } from 'constructs';

/** Props of {@link ArgoApplicationChart}. */
export interface ArgoApplicationProps {
  /** Git repository that holds the committed `dist/` folder. */
  readonly repoUrl: string;
  /** Folder with the synthesized platform inside that repository. */
  readonly path: string;
  /** Branch or tag Argo CD follows. @default "main" */
  readonly revision?: string;
}

/** An Argo CD `Application` that applies the synthesized platform folder and keeps the cluster in sync with it. */
export class ArgoApplicationChart extends Chart {
  public constructor(scope: Construct, id: string, props: ArgoApplicationProps) {
    super(scope, id, { namespace: 'argocd' });
    new ApiObject(this, 'application', {
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Application',
      metadata: { name: 'modelmesh' },
      spec: {
        project: 'default',
        source: { repoURL: props.repoUrl, targetRevision: props.revision ?? 'main', path: props.path },
        destination: { server: 'https://kubernetes.default.svc', namespace: 'modelmesh' },
        syncPolicy: {
          automated: { prune: true, selfHeal: true },
          syncOptions: ['CreateNamespace=true', 'ServerSideApply=true'],
        },
      },
    });
  }
}

/** The repository the gitops example assumes; replace it with yours. */
export const GITOPS_REPO = 'https://git.example.com/platform/modelmesh-deploy.git';

/** Adds the Argo CD application chart for a platform synthesized into `dist/gitops/platform`. */
export function gitopsApplication(app: App): ArgoApplicationChart {
  return new ArgoApplicationChart(app, 'argocd-application', { repoUrl: GITOPS_REPO, path: 'dist/gitops/platform' });
}
