// Machine code's structuredClone. Node's own serializes the host objects it knows as transferable
// or cloneable (a ReadableStream, a Blob, a CryptoKey) by calling their [messaging_transfer_symbol]
// or [messaging_clone_symbol] method, looked up on the object's prototype chain, and rebuilds them
// on the other side from the "module:Class" name that method returns, with Node's internal require.
// Machine code can subclass those classes (`class X extends ReadableStream`) and name any class
// it likes: an internal/fs/promises FileHandle on a descriptor of its choosing reads and writes
// past the permission model (fd 3 is the sandbox's channel to the server). Transferring a stream
// also hands machine code MessagePorts, whose Node prototypes are not frozen.
//
// So the sandbox clones with V8's own serializer, which knows only the ECMAScript values (objects,
// arrays, Maps, Sets, Dates, RegExps, errors, ArrayBuffers and their views): a host object
// (a stream, a Blob, a key) is a DataCloneError, and only ArrayBuffers can be transferred.
import v8 from "node:v8";
import { isArrayBuffer } from "node:util/types";

function dataCloneError(message: string): DOMException {
  return new DOMException(message, "DataCloneError");
}

class SandboxSerializer extends v8.Serializer {
  _getDataCloneError = dataCloneError;
  // V8's defaults refuse host objects and SharedArrayBuffers with a plain Error of the host, not
  // a DataCloneError: refuse them here as the web's structuredClone does.
  _writeHostObject(): never {
    throw dataCloneError("a host object could not be cloned");
  }
  _getSharedArrayBufferId(): never {
    throw dataCloneError("a SharedArrayBuffer cannot be cloned in the sandbox");
  }
}

function transferList(options: unknown): ArrayBuffer[] {
  if (options === undefined || options === null) return [];
  if (typeof options !== "object" && typeof options !== "function") {
    throw new TypeError("structuredClone: the options must be an object");
  }
  const transfer: unknown = (options as { transfer?: unknown }).transfer;
  if (transfer === undefined) return [];
  const list: unknown[] = Array.from(transfer as Iterable<unknown>);
  const buffers: ArrayBuffer[] = [];
  for (const item of list) {
    if (!isArrayBuffer(item)) {
      throw dataCloneError("only ArrayBuffers can be transferred in the sandbox");
    }
    if (buffers.includes(item)) throw dataCloneError("an ArrayBuffer is transferred twice");
    buffers.push(item);
  }
  return buffers;
}

export function sandboxStructuredClone(value: unknown, options?: unknown): unknown {
  const buffers = transferList(options);
  const serializer = new SandboxSerializer();
  buffers.forEach((buffer, id) => serializer.transferArrayBuffer(id, buffer));
  serializer.writeHeader();
  serializer.writeValue(value);
  const data = serializer.releaseBuffer();
  // Moves each transferred buffer's contents out, detaching it as a transfer does. Node's clone is
  // safe here: it is given nothing but ArrayBuffers.
  const moved = buffers.map((buffer) => structuredClone(buffer, { transfer: [buffer] }));
  const deserializer = new v8.Deserializer(data);
  moved.forEach((buffer, id) => deserializer.transferArrayBuffer(id, buffer));
  deserializer.readHeader();
  return deserializer.readValue();
}
