import CDNNL

/// Thin Swift wrappers over oneDNN 2.6's C API: one CPU engine, a stream per thread, primitives,
/// memory objects and layout-converting arguments. Everything here runs on the caller's thread, and
/// the caches of primitives and memory objects are per thread (`PerThread`), so threads may run
/// ops at the same time.
enum DNNL {
    static let argSrc: Int32 = 1, argDst: Int32 = 17, argWeights: Int32 = 33, argBias: Int32 = 41
    static let argDiffSrc: Int32 = 129, argDiffDst: Int32 = 145, argDiffWeights: Int32 = 161

    nonisolated(unsafe) static let engine: dnnl_engine_t = {
        _ = EngineThreads.configure
        var e: dnnl_engine_t?
        check(dnnl_engine_create(&e, dnnl_cpu, 0), "dnnl_engine_create")
        return e!
    }()
    /// The calling thread's stream (a oneDNN stream must not be used by two threads at once).
    static var stream: dnnl_stream_t { streams.value.stream }
    private static let streams = PerThread<Stream> { Stream() }

    /// A stream, destroyed with the thread that made it.
    private final class Stream {
        let stream: dnnl_stream_t
        init() {
            var s: dnnl_stream_t?
            DNNL.check(dnnl_stream_create(&s, DNNL.engine, dnnl_stream_default_flags.rawValue), "dnnl_stream_create")
            stream = s!
        }
        deinit { dnnl_stream_destroy(stream) }
    }

    static func check(_ status: dnnl_status_t, _ what: @autoclosure () -> String) {
        precondition(status == dnnl_success, "oneDNN: \(what()) failed with status \(status.rawValue)")
    }

    /// A `dnnl_dims_t` (12 entries) holding `values`, passed to C as a pointer.
    static func dims(_ values: [Int]) -> [dnnl_dim_t] {
        values.map { dnnl_dim_t($0) } + [dnnl_dim_t](repeating: 0, count: 12 - values.count)
    }

    /// A plain row-major f32 descriptor (`tag` = abcd…) or one that lets the primitive choose (`any`).
    static func memoryDesc(_ shape: [Int], any: Bool = false) -> dnnl_memory_desc_t {
        memoryDesc(shape, tag: any ? dnnl_format_tag_any : nil)
    }

    /// An f32 descriptor with an explicit format tag (nil: plain row-major).
    static func memoryDesc(_ shape: [Int], tag explicitTag: dnnl_format_tag_t?) -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        let d = dims(shape)
        let tag: dnnl_format_tag_t
        if let explicitTag { tag = explicitTag } else {
            switch shape.count {
            case 1: tag = dnnl_a
            case 2: tag = dnnl_ab
            case 3: tag = dnnl_abc
            case 4: tag = dnnl_abcd
            case 5: tag = dnnl_abcde
            case 6: tag = dnnl_abcdef
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
    init<Desc>(_ desc: inout Desc, hint: DNNLPrimitive? = nil, reluPostOp: Bool = false, what: String) {
        var pd: dnnl_primitive_desc_t?
        var attr: dnnl_primitive_attr_t? = nil
        if reluPostOp {
            var ops: dnnl_post_ops_t?
            DNNL.check(dnnl_primitive_attr_create(&attr), "primitive_attr_create")
            DNNL.check(dnnl_post_ops_create(&ops), "post_ops_create")
            DNNL.check(dnnl_post_ops_append_eltwise(ops, 1, dnnl_eltwise_relu, 0, 0), "post_ops_append_eltwise(relu)")
            DNNL.check(dnnl_primitive_attr_set_post_ops(attr, ops), "primitive_attr_set_post_ops")
            dnnl_post_ops_destroy(ops)
        }
        defer { if let attr { dnnl_primitive_attr_destroy(attr) } }
        let status = withUnsafePointer(to: &desc) {
            dnnl_primitive_desc_create(&pd, UnsafeRawPointer($0), attr, DNNL.engine, hint?.descriptor)
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

/// A physical layout of a tensor's values as oneDNN describes it: plain row-major, or one of the
/// blocked layouts its primitives prefer. Two formats are equal when oneDNN says their descriptors
/// are.
package final class DNNLFormat: @unchecked Sendable {
    let desc: dnnl_memory_desc_t
    /// Logical shape.
    package let shape: [Int]
    /// Floats the buffer holds (more than the logical count when channels are padded to a block).
    package let elementCount: Int
    /// For 4-D activations: 1 for plain NCHW, B for the channel-blocked NCHW{B}c layouts
    /// (`aBcd8b`, `aBcd16b`); nil for any other layout.
    package let channelBlock: Int?
    /// True for plain row-major order (the layout of `Tensor.storage`).
    package let isPlain: Bool
    /// A 4-D layout blocked on channels alone that the engine's per-channel kernels cannot run in:
    /// a narrow block (NCHW4c, which oneDNN picks for grouped convolutions of 20 or 80 channels per
    /// group) or channels padded to a block. Weight layouts (blocked on other dimensions) are not.
    package let isUnusableChannelBlocking: Bool

    init(_ desc: dnnl_memory_desc_t, shape: [Int]) {
        var d = desc
        self.desc = desc
        self.shape = shape
        elementCount = dnnl_memory_desc_get_size(&d) / MemoryLayout<Float>.stride
        var block: Int? = nil
        if shape.count == 4 {
            for (tag, b) in [(dnnl_abcd, 1), (dnnl_aBcd8b, 8), (dnnl_aBcd16b, 16)] where shape[1] % b == 0 {
                var candidate = DNNL.memoryDesc(shape, tag: tag)
                if dnnl_memory_desc_equal(&d, &candidate) != 0 { block = b; break }
            }
        }
        channelBlock = block
        isUnusableChannelBlocking = shape.count == 4 && block == nil && desc.format_kind == dnnl_blocked
            && desc.format_desc.blocking.inner_nblks == 1 && desc.format_desc.blocking.inner_idxs.0 == 1
        if block == 1 { isPlain = true } else if shape.count == 4 { isPlain = false } else {
            var plainDesc = DNNL.memoryDesc((1...6).contains(shape.count) ? shape : [Swift.max(Shape.count(shape), 1)])
            isPlain = dnnl_memory_desc_equal(&d, &plainDesc) != 0
        }
    }

    private static let plainFormats = PerThread<[[Int]: DNNLFormat]> { [:] }

    /// The plain row-major format of `shape`.
    static func plain(_ shape: [Int]) -> DNNLFormat {
        if let f = plainFormats.value[shape] { return f }
        // Ranks oneDNN's plain tags do not cover (scalars, > 6) are described as one flat dimension:
        // the same memory.
        let descShape = (1...6).contains(shape.count) ? shape : [Swift.max(Shape.count(shape), 1)]
        let f = DNNLFormat(DNNL.memoryDesc(descShape), shape: shape)
        plainFormats.value[shape] = f
        return f
    }

    private static let blockedFormats = PerThread<[[Int]: DNNLFormat]> { [:] }

    /// The dense channel-blocked layout NCHW{block}c (`aBcd8b` or `aBcd16b`) of a 4-D `shape`
    /// whose channel count `block` divides.
    static func channelBlocked(_ shape: [Int], block: Int) -> DNNLFormat {
        precondition(shape.count == 4 && (block == 8 || block == 16) && shape[1] % block == 0,
                     "channelBlocked: shape \(shape) cannot be laid out in channel blocks of \(block)")
        let key = shape + [block]
        if let f = blockedFormats.value[key] { return f }
        let f = DNNLFormat(DNNL.memoryDesc(shape, tag: block == 8 ? dnnl_aBcd8b : dnnl_aBcd16b), shape: shape)
        blockedFormats.value[key] = f
        return f
    }

    /// True when the buffer holds exactly the logical values in some order (no padding), so
    /// element-wise maps may run on it directly.
    package var isDense: Bool { elementCount == Shape.count(shape) }

    package func isEqual(_ other: DNNLFormat) -> Bool {
        if self === other { return true }
        var a = desc, b = other.desc
        return dnnl_memory_desc_equal(&a, &b) != 0
    }
}

/// Layout conversions between formats, with reorder primitives cached by format pair.
enum Reorder {
    /// Per thread: each call binds the cached memory objects to its buffers.
    private static let cache = PerThread<[[Int]: [(DNNLFormat, DNNLFormat, DNNLPrimitive, DNNLMemory, DNNLMemory)]]> { [:] }

    /// Copies `source` (laid out as `from`) into `destination` (laid out as `to`).
    static func run(from: DNNLFormat, _ source: UnsafeMutablePointer<Float>, to: DNNLFormat, _ destination: UnsafeMutablePointer<Float>) {
        let entry: (DNNLPrimitive, DNNLMemory, DNNLMemory)
        if let hit = cache.value[from.shape]?.first(where: { $0.0.isEqual(from) && $0.1.isEqual(to) }) {
            entry = (hit.2, hit.3, hit.4)
        } else {
            let e = (DNNLPrimitive(reorderFrom: from.desc, to: to.desc), DNNLMemory(from.desc, allocate: false), DNNLMemory(to.desc, allocate: false))
            cache.value[from.shape, default: []].append((from, to, e.0, e.1, e.2))
            entry = e
        }
        entry.1.bind(source)
        entry.2.bind(destination)
        entry.0.execute([(DNNL.argSrc, entry.1.memory), (DNNL.argDst, entry.2.memory)])
    }
}
