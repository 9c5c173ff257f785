import CDNNL

/// Thin Swift wrappers over oneDNN 2.6's C API: one CPU engine and stream, primitives, memory
/// objects and layout-converting arguments. Everything here runs on the caller's thread.
enum DNNL {
    static let argSrc: Int32 = 1, argDst: Int32 = 17, argWeights: Int32 = 33, argBias: Int32 = 41
    static let argMean: Int32 = 49, argVariance: Int32 = 50, argScale: Int32 = 51, argShift: Int32 = 52
    static let argWorkspace: Int32 = 64
    static let argDiffSrc: Int32 = 129, argDiffDst: Int32 = 145, argDiffWeights: Int32 = 161
    static let argDiffScale: Int32 = 255, argDiffShift: Int32 = 256

    nonisolated(unsafe) static let engine: dnnl_engine_t = {
        var e: dnnl_engine_t?
        check(dnnl_engine_create(&e, dnnl_cpu, 0), "dnnl_engine_create")
        return e!
    }()
    nonisolated(unsafe) static let stream: dnnl_stream_t = {
        var s: dnnl_stream_t?
        check(dnnl_stream_create(&s, engine, dnnl_stream_default_flags.rawValue), "dnnl_stream_create")
        return s!
    }()

    static func check(_ status: dnnl_status_t, _ what: @autoclosure () -> String) {
        precondition(status == dnnl_success, "oneDNN: \(what()) failed with status \(status.rawValue)")
    }

    /// A `dnnl_dims_t` (12 entries) holding `values`, passed to C as a pointer.
    static func dims(_ values: [Int]) -> [dnnl_dim_t] {
        values.map { dnnl_dim_t($0) } + [dnnl_dim_t](repeating: 0, count: 12 - values.count)
    }

    /// A plain row-major f32 descriptor (`tag` = abcd…) or one that lets the primitive choose (`any`).
    static func memoryDesc(_ shape: [Int], any: Bool = false) -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        let d = dims(shape)
        let tag: dnnl_format_tag_t
        if any { tag = dnnl_format_tag_any } else {
            switch shape.count {
            case 1: tag = dnnl_a
            case 2: tag = dnnl_ab
            case 3: tag = dnnl_abc
            case 4: tag = dnnl_abcd
            case 5: tag = dnnl_abcde
            default: preconditionFailure("oneDNN: unsupported rank \(shape.count)")
            }
        }
        check(dnnl_memory_desc_init_by_tag(&md, Int32(shape.count), d, dnnl_f32, tag), "memory_desc_init \(shape)")
        return md
    }
}

/// A created primitive with its descriptor.
final class DNNLPrimitive {
    let descriptor: dnnl_primitive_desc_t
    let primitive: dnnl_primitive_t

    /// Creates from an op descriptor (a `dnnl_*_desc_t` value); `hint` is the forward descriptor
    /// that backward primitives require.
    init<Desc>(_ desc: inout Desc, hint: DNNLPrimitive? = nil, what: String) {
        var pd: dnnl_primitive_desc_t?
        let status = withUnsafePointer(to: &desc) {
            dnnl_primitive_desc_create(&pd, UnsafeRawPointer($0), nil, DNNL.engine, hint?.descriptor)
        }
        DNNL.check(status, "primitive_desc_create(\(what))")
        descriptor = pd!
        var p: dnnl_primitive_t?
        DNNL.check(dnnl_primitive_create(&p, descriptor), "primitive_create(\(what))")
        primitive = p!
    }

    /// Creates a reorder between two descriptors.
    init(reorderFrom src: dnnl_memory_desc_t, to dst: dnnl_memory_desc_t) {
        var s = src, d = dst
        var pd: dnnl_primitive_desc_t?
        DNNL.check(dnnl_reorder_primitive_desc_create(&pd, &s, DNNL.engine, &d, DNNL.engine, nil), "reorder_primitive_desc_create")
        descriptor = pd!
        var p: dnnl_primitive_t?
        DNNL.check(dnnl_primitive_create(&p, descriptor), "primitive_create(reorder)")
        primitive = p!
    }

    deinit {
        dnnl_primitive_destroy(primitive)
        dnnl_primitive_desc_destroy(descriptor)
    }

    func md(_ query: dnnl_query_t) -> dnnl_memory_desc_t {
        dnnl_primitive_desc_query_md(descriptor, query, 0).pointee
    }

    func execute(_ args: [(Int32, dnnl_memory_t)]) {
        let list = args.map { dnnl_exec_arg_t(arg: $0.0, memory: $0.1) }
        list.withUnsafeBufferPointer { buf in
            DNNL.check(dnnl_primitive_execute(primitive, DNNL.stream, Int32(buf.count), buf.baseAddress), "primitive_execute")
        }
        DNNL.check(dnnl_stream_wait(DNNL.stream), "stream_wait")
    }
}

/// A oneDNN memory object: either owned (allocated by oneDNN) or a view of a caller's buffer.
final class DNNLMemory {
    let memory: dnnl_memory_t
    let desc: dnnl_memory_desc_t

    init(_ desc: dnnl_memory_desc_t, allocate: Bool) {
        var d = desc
        var m: dnnl_memory_t?
        DNNL.check(dnnl_memory_create(&m, &d, DNNL.engine, allocate ? UnsafeMutableRawPointer(bitPattern: -1) : nil), "memory_create")
        memory = m!
        self.desc = desc
    }

    deinit { dnnl_memory_destroy(memory) }

    func bind(_ pointer: UnsafeMutablePointer<Float>) {
        DNNL.check(dnnl_memory_set_data_handle(memory, pointer), "memory_set_data_handle")
    }
}

/// One argument of a primitive, given by the caller as a plain row-major buffer; when the primitive
/// chose another layout, a reorder converts on the way in (inputs) or out (outputs).
final class DNNLArgument {
    let user: DNNLMemory
    let inner: DNNLMemory?
    let reorder: DNNLPrimitive?
    let isInput: Bool

    init(plain shape: [Int], chosen: dnnl_memory_desc_t, isInput: Bool) {
        let plain = DNNL.memoryDesc(shape)
        var a = plain, b = chosen
        user = DNNLMemory(plain, allocate: false)
        self.isInput = isInput
        if dnnl_memory_desc_equal(&a, &b) != 0 {
            inner = nil; reorder = nil
        } else {
            let internalMemory = DNNLMemory(chosen, allocate: true)
            inner = internalMemory
            reorder = isInput ? DNNLPrimitive(reorderFrom: plain, to: chosen) : DNNLPrimitive(reorderFrom: chosen, to: plain)
        }
    }

    /// Binds the caller's buffer; for inputs, converts it to the chosen layout. Returns the memory to
    /// pass to the primitive.
    func prepare(_ pointer: UnsafeMutablePointer<Float>) -> dnnl_memory_t {
        user.bind(pointer)
        guard let inner, let reorder else { return user.memory }
        if isInput { reorder.execute([(DNNL.argSrc, user.memory), (DNNL.argDst, inner.memory)]) }
        return inner.memory
    }

    /// For outputs: converts the primitive's result back into the caller's buffer.
    func finish() {
        guard !isInput, let inner, let reorder else { return }
        reorder.execute([(DNNL.argSrc, inner.memory), (DNNL.argDst, user.memory)])
    }
}
