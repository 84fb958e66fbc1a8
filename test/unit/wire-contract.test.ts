import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as protobuf from 'protobufjs';

/**
 * Holds our .proto files against upstream's wire facts (test/fixtures/wire-contract.json, a copy of the
 * reference data): every service, method, message, field name, number, type, label and enum value must match.
 */

interface ContractField { id: number; type: string; repeated: boolean; map: boolean; keyType?: string }
interface ContractMethod { request: string; response: string; requestStream: boolean; responseStream: boolean }
interface WireContract {
  services: Record<string, Record<string, ContractMethod>>;
  messages: Record<string, Record<string, ContractField>>;
  enums: Record<string, Record<string, number>>;
}

const ROOT = join(__dirname, '..', '..');
const PROTO_DIR = join(ROOT, 'proto');
const FIXTURE = join(ROOT, 'test', 'fixtures', 'wire-contract.json');
const SHARED_REFERENCE = join(ROOT, '..', 'shared', 'reference', 'wire-contract.json');

/** Loads our protos exactly as written (keepCase: upstream mixes camelCase and snake_case field names). */
function loadProtos(dir: string = PROTO_DIR): protobuf.Root {
  const root = new protobuf.Root();
  root.loadSync(['model-mesh.proto', 'model-runtime.proto', 'grpc_predict_v2.proto'].map((f) => join(dir, f)), { keepCase: true });
  root.resolveAll();
  return root;
}

function typeName(field: protobuf.Field): string {
  if (field.resolvedType) return field.resolvedType.fullName.replace(/^\./, '');
  return field.type;
}

/** Every difference between the protos and the contract, each naming the offending element. */
function contractViolations(root: protobuf.Root, contract: WireContract): string[] {
  const problems: string[] = [];
  for (const [serviceName, methods] of Object.entries(contract.services)) {
    const service = root.lookup(serviceName);
    if (!(service instanceof protobuf.Service)) { problems.push(`service ${serviceName} is missing`); continue; }
    for (const [methodName, expected] of Object.entries(methods)) {
      const method = service.methods[methodName];
      if (!method) { problems.push(`method ${serviceName}/${methodName} is missing`); continue; }
      method.resolve();
      const actual = {
        request: method.resolvedRequestType?.fullName.replace(/^\./, ''),
        response: method.resolvedResponseType?.fullName.replace(/^\./, ''),
        requestStream: Boolean(method.requestStream),
        responseStream: Boolean(method.responseStream),
      };
      for (const key of Object.keys(expected) as (keyof ContractMethod)[]) {
        if (actual[key] !== expected[key]) {
          problems.push(`method ${serviceName}/${methodName}: ${key} is ${String(actual[key])}, expected ${String(expected[key])}`);
        }
      }
    }
  }
  for (const [messageName, fields] of Object.entries(contract.messages)) {
    const message = root.lookup(messageName);
    if (!(message instanceof protobuf.Type)) { problems.push(`message ${messageName} is missing`); continue; }
    for (const [fieldName, expected] of Object.entries(fields)) {
      const field = message.fields[fieldName];
      if (!field) { problems.push(`field ${messageName}.${fieldName} is missing`); continue; }
      const isMap = field instanceof protobuf.MapField;
      const actual: ContractField = { id: field.id, type: typeName(field), repeated: field.repeated, map: isMap };
      if (isMap) actual.keyType = (field as protobuf.MapField).keyType;
      for (const key of Object.keys(expected) as (keyof ContractField)[]) {
        if (actual[key] !== expected[key]) {
          problems.push(`field ${messageName}.${fieldName}: ${key} is ${String(actual[key])}, expected ${String(expected[key])}`);
        }
      }
    }
  }
  for (const [enumName, values] of Object.entries(contract.enums)) {
    const enumType = root.lookup(enumName);
    if (!(enumType instanceof protobuf.Enum)) { problems.push(`enum ${enumName} is missing`); continue; }
    for (const [valueName, number] of Object.entries(values)) {
      if (enumType.values[valueName] !== number) {
        problems.push(`enum ${enumName}.${valueName} is ${String(enumType.values[valueName])}, expected ${number}`);
      }
    }
  }
  return problems;
}

const contract = JSON.parse(readFileSync(FIXTURE, 'utf8')) as WireContract;

describe('wire contract', () => {
  test('our protos match every upstream service, method, message, field and enum value', () => {
    expect(contractViolations(loadProtos(), contract)).toEqual([]);
  });

  test('the contract covers the three upstream services', () => {
    expect(Object.keys(contract.services).sort()).toEqual(['inference.GRPCInferenceService', 'mmesh.ModelMesh', 'mmesh.ModelRuntime']);
    expect(Object.keys(contract.messages).length).toBeGreaterThan(40);
  });

  test('a changed field number is reported with the message and field it belongs to', () => {
    const root = loadProtos();
    const field = (root.lookup('mmesh.SetVModelRequest') as protobuf.Type).fields.owner;
    field.id = 11;
    expect(contractViolations(root, contract)).toEqual(['field mmesh.SetVModelRequest.owner: id is 11, expected 10']);
  });

  test('a renamed method and a missing enum value are reported', () => {
    const root = loadProtos();
    const service = root.lookup('mmesh.ModelRuntime') as protobuf.Service;
    const method = service.methods.modelSize;
    service.remove(method);
    const status = root.lookup('mmesh.ModelStatusInfo.ModelStatus') as protobuf.Enum;
    status.remove('LOADING_FAILED');
    expect(contractViolations(root, contract)).toEqual([
      'method mmesh.ModelRuntime/modelSize is missing',
      'enum mmesh.ModelStatusInfo.ModelStatus.LOADING_FAILED is undefined, expected 4',
    ]);
  });

  const sharedExists = existsSync(SHARED_REFERENCE);
  (sharedExists ? test : test.skip)('the fixture is a current copy of the shared reference (where ../shared exists)', () => {
    expect(JSON.parse(readFileSync(SHARED_REFERENCE, 'utf8'))).toEqual(contract);
  });
});
