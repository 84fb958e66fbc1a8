import { DependencyType, JsonFile, TextFile, javascript, typescript } from 'projen';

const TYPESCRIPT = '~5.9.3';
// Both packages are released together at one version; it is also the tag of the runtime image (lib/images.ts reads it
// from the construct library's package.json, `modelmesh --version` from the runtime's).
const PACKAGE_VERSION = '0.0.0';
const NODE_TYPES = '@types/node@^20';

// Versions of the runtime package's dependencies live here so both packages are defined in one place.
const RUNTIME_DEPS: Record<string, string> = {
  '@bufbuild/protobuf': '^2.10.0',
  '@grpc/grpc-js': '^1.14.0',
  'etcd3': '^1.1.2',
  'onnxruntime-node': '^1.22.0',
  'pino': '^10.4.0',
  'prom-client': '^15.1.3',
  // Storage puller SDKs. Node 20 bounds: @azure/storage-blob 12.33+ and @google-cloud/storage 8 require Node 22.
  '@aws-sdk/client-s3': '^3.1169.0',
  '@azure/storage-blob': '~12.32.0',
  '@google-cloud/storage': '^7.19.0',
};

const project = new typescript.TypeScriptProject({
  name: 'cdk8s-modelmesh',
  description: 'cdk8s constructs for a controller-less, ModelMesh-compatible multi-model serving platform',
  license: 'Apache-2.0',
  copyrightOwner: 'The cdk8s-modelmesh authors',
  defaultReleaseBranch: 'main',
  packageManager: javascript.NodePackageManager.NPM,
  projenrcTs: true,
  minNodeVersion: '20.0.0',
  typescriptVersion: TYPESCRIPT,
  projenVersion: '^0.103.25',

  srcdir: 'lib',
  libdir: 'build',
  // The compiled library, not lib/ (the sources, which the package does not ship).
  entrypoint: 'build/index.js',
  testdir: 'test',
  sampleCode: false,

  deps: ['cdk8s@^2.70.0', 'cdk8s-plus-28@^2.5.0', 'constructs@^10.4.0'],
  devDeps: [
    NODE_TYPES,
    'protobufjs@^7.5.0',
    'ts-proto@^2.8.0',
    '@bufbuild/buf@^1.57.0',
    // Construct library tooling: CRD import, YAML handling and offline manifest validation.
    'cdk8s-cli@^2.207.60',
    'yaml@^2.8.0',
    'ajv@^8.17.1',
    // Kubernetes 1.28 object schemas for the offline validation test: client-node 0.20.x is generated from the 1.28 OpenAPI.
    '@kubernetes/client-node@0.20.0',
    // CRD-derived validators for the Prometheus operator ServiceMonitor and the Argo CD Application the examples emit.
    '@kubernetes-models/prometheus-operator@^4.4.4',
    '@kubernetes-models/argo-cd@^2.7.2',
    // Storage emulators the puller's integration tests start on loopback (azurite 3.36+ requires Node 21+).
    's3rver@^3.7.1',
    'azurite@~3.35.0',
    ...Object.entries(RUNTIME_DEPS).map(([name, version]) => `${name}@${version}`),
  ],

  github: false,
  release: false,
  buildWorkflow: false,
  depsUpgrade: false,
  pullRequestTemplate: false,
  package: true,

  tsconfig: {
    compilerOptions: {
      lib: ['es2022'],
      target: 'ES2022',
      skipLibCheck: true,
    },
  },
  tsconfigDev: {
    // isolatedModules lets ts-jest transpile file by file; `npm run typecheck` does the full type check.
    compilerOptions: { skipLibCheck: true, isolatedModules: true },
    include: ['../runtime/src/**/*.ts', '../runtime/servers/**/*.ts', '../proto/**/*.ts', '../bench/**/*.ts', '../lib/**/*.ts',
      '../constructs-examples/**/*.ts', '../scripts/**/*.ts'],
    exclude: ['node_modules', '../runtime/dist'],
  },

  eslintOptions: {
    dirs: ['lib'],
    devdirs: ['test', 'runtime/src', 'runtime/servers', 'bench', 'projenrc', 'constructs-examples', 'scripts'],
    ignorePatterns: ['*.js', '*.d.ts', 'node_modules/', 'proto/gen/', 'lib/imports/', 'runtime/dist/', 'coverage'],
    commandOptions: { fix: false },
  },

  jestOptions: {
    updateSnapshot: javascript.UpdateSnapshot.NEVER,
    junitReporting: false,
    jestConfig: {
      testMatch: ['<rootDir>/test/**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '/runtime/dist/'],
      modulePathIgnorePatterns: ['<rootDir>/runtime/dist/', '<rootDir>/build/'],
      globalSetup: '<rootDir>/test/harness/global-setup.ts',
      globalTeardown: '<rootDir>/test/harness/global-teardown.ts',
      testTimeout: 60_000,
      maxWorkers: 2,
      collectCoverage: false,
    },
  },
});

// Tools projen adds without a version would be written as "*" until an install resolves them; pinning them keeps
// synthesis reproducible (the generated-files test synthesizes without installing).
for (const spec of ['@types/jest@^30.0.0', 'eslint-import-resolver-typescript@^4.4.5', 'eslint-plugin-import@^2.32.0',
  'jest@^30.5.2', 'ts-jest@^29.4.15', 'ts-node@^10.9.2']) {
  project.deps.addDependency(spec, DependencyType.BUILD);
}

project.package.addField('workspaces', ['runtime']);
project.package.addVersion(PACKAGE_VERSION);
// What the construct library's tarball holds besides package.json, README and LICENSE: the compiled library only
// (test/packaging checks the tarball installs and synthesizes on its own).
project.package.addField('files', ['build/**/*.js', 'build/**/*.d.ts']);
// Model files are binary whatever bytes they happen to contain.
project.gitattributes.addAttributes('*.onnx', 'binary');
project.npmrc.addConfig('onnxruntime-node-install', 'skip');

// The runtime image's package: its own package.json and tsconfig, defined here beside the library's.
new JsonFile(project, 'runtime/package.json', {
  obj: {
    'name': 'cdk8s-modelmesh-runtime',
    'version': PACKAGE_VERSION,
    'description': 'The ModelMesh-compatible mesh runtime: mesh process, built-in model servers and operator commands',
    'license': 'Apache-2.0',
    'bin': { modelmesh: 'bin/modelmesh.js' },
    'main': 'dist/runtime/src/index.js',
    // models/ holds the sample model `modelmesh dev` serves.
    'files': ['bin', 'dist', 'models', '!dist/**/*.tsbuildinfo'],
    'engines': { node: '>= 20.0.0' },
    'scripts': { build: 'tsc -p tsconfig.json' },
    'dependencies': RUNTIME_DEPS,
    '//': '~~ Generated by projen. To modify, edit .projenrc.ts and run "npx projen".',
  },
});

new JsonFile(project, 'runtime/tsconfig.json', {
  obj: {
    extends: '../tsconfig.json',
    compilerOptions: {
      // The runtime compiles the shared contract (lib/contract.ts) and the generated protos with its own sources.
      rootDir: '..',
      outDir: 'dist',
      declaration: false,
      inlineSourceMap: false,
      sourceMap: true,
      types: ['node'],
    },
    include: ['src/**/*.ts', 'servers/**/*.ts', '../lib/contract.ts', '../proto/gen/**/*.ts'],
    exclude: ['node_modules', 'dist'],
  },
});

// The example apps and the scripts get their own tsconfig so the type check, ts-node and eslint's project service see
// them (they import lib/ and, for the scripts, the yaml package).
for (const dir of ['constructs-examples', 'scripts']) {
  new JsonFile(project, `${dir}/tsconfig.json`, {
    obj: {
      extends: '../tsconfig.json',
      compilerOptions: { rootDir: '..', noEmit: true, skipLibCheck: true, types: ['node'] },
      include: ['**/*.ts', '../lib/**/*.ts'],
      exclude: ['node_modules'],
    },
  });
}

new TextFile(project, 'buf.gen.yaml', {
  lines: [
    '# ~~ Generated by projen. To modify, edit .projenrc.ts and run "npx projen".',
    'version: v2',
    'plugins:',
    '  - local: node_modules/.bin/protoc-gen-ts_proto',
    '    out: proto/gen',
    '    opt:',
    '      - outputServices=grpc-js',
    '      - esModuleInterop=true',
    '      - forceLong=number',
    '      - env=node',
    '      - useExactTypes=false',
  ],
});

project.gitignore.exclude('/runtime/dist/', '/test-reports/', '/dist/', '/build/', '*.tsbuildinfo');
project.npmignore?.exclude('/runtime/', '/proto/', '/bench/', '/constructs-examples/', '/docs/', '/.ci/', '/test/');

new JsonFile(project, 'bench/tsconfig.json', {
  obj: {
    extends: '../tsconfig.json',
    compilerOptions: { rootDir: '..', noEmit: true, skipLibCheck: true, types: ['node'] },
    include: ['**/*.ts', '../test/harness/**/*.ts', '../proto/gen/**/*.ts', '../lib/contract.ts'],
    exclude: ['node_modules'],
  },
});

project.addTask('bench', {
  description: 'Run the benchmarks (bench/README.md): npm run bench -- [--quick] [--json <file>] [--scenario <name>]',
  exec: 'ts-node --transpile-only --project bench/tsconfig.json bench/run.ts',
  receiveArgs: true,
});

project.addTask('image', {
  description: 'Build the runtime image (runtime/Dockerfile) with podman, no registry needed, and smoke-test it (root; not part of `npm test`)',
  exec: 'bash scripts/build-image.sh',
});

project.addTask('gen', {
  description: 'Regenerate TypeScript from proto/*.proto (committed; a test checks it is current)',
  exec: 'buf generate proto',
});

project.addTask('docs', {
  description: 'Regenerate docs/api.md from lib/\'s exports and TSDoc (committed; a test checks it is current). `-- --check` only checks',
  exec: 'ts-node --transpile-only --project scripts/tsconfig.json scripts/gen-api-docs.ts',
  receiveArgs: true,
});

const typecheck = project.addTask('typecheck', {
  description: 'Type-check the library, the runtime and the tests',
  steps: [
    { exec: 'tsc --noEmit -p tsconfig.json' },
    { exec: 'tsc --noEmit -p test/tsconfig.json' },
    { exec: 'tsc --noEmit -p runtime/tsconfig.json' },
  ],
});

project.compileTask.exec('tsc -p runtime/tsconfig.json');

project.addTask('import-crds', {
  description: 'Regenerate lib/imports from the KServe CRDs in ../shared/reference/crds (descriptions stripped; committed)',
  exec: 'bash scripts/import-crds.sh',
});

project.addTask('synth', {
  description: 'Synthesize constructs-examples/ into dist/ (one folder per example app)',
  exec: 'cdk8s synth --check-upgrade=false',
});

// `npm test`: every jest tier, then the static checks. The JSON result feeds .ci/run's summary line.
project.testTask.reset();
project.testTask.exec('mkdir -p test-reports');
project.testTask.exec('jest --ci --passWithNoTests --json --outputFile=test-reports/jest-results.json', { receiveArgs: true });
project.testTask.spawn(typecheck);
project.testTask.spawn(project.eslint!.eslintTask);

project.synth();
