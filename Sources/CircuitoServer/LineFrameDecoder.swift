import NIOCore

/// One inbound frame: a line (without its newline and an optional carriage return before it), or the news that a
/// line was longer than the bound.
public enum LineFrame: Sendable, Hashable {
    case line(ByteBuffer)
    case oversize
}

/// Splits the byte stream into newline-terminated lines of at most `maximumFrameBytes`.
///
/// An oversize line is never buffered: once more than the bound has arrived without a newline, the bytes are
/// dropped as they come until the line's newline, and then one `.oversize` frame is passed on. The server answers
/// it with an error and the connection stays usable for the lines after it.
public struct LineFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = LineFrame

    public let maximumFrameBytes: Int
    /// True while dropping the rest of an oversize line.
    private var discarding = false
    /// Bytes of the buffered, unfinished line already searched for a newline, so each byte is looked at once.
    private var searchedBytes = 0

    public init(maximumFrameBytes: Int) {
        precondition(maximumFrameBytes > 0, "a frame bound is positive")
        self.maximumFrameBytes = maximumFrameBytes
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let view = buffer.readableBytesView
        let searchStart = view.startIndex + searchedBytes
        guard let newline = view[searchStart...].firstIndex(of: 0x0A) else {
            searchedBytes = view.count
            // One byte more than the bound may still be the carriage return before a newline yet to come.
            if discarding || view.count > maximumFrameBytes + 1 {
                // Drop what has arrived of an oversize line; keep nothing of it.
                discarding = true
                buffer.moveReaderIndex(forwardBy: view.count)
                searchedBytes = 0
            }
            return .needMoreData
        }
        let length = newline - view.startIndex
        searchedBytes = 0
        // A carriage return before the newline is not part of the line, so it does not count against the bound.
        let endsWithCarriageReturn = length > 0 && view[newline - 1] == 0x0D
        if discarding || length - (endsWithCarriageReturn ? 1 : 0) > maximumFrameBytes {
            discarding = false
            buffer.moveReaderIndex(forwardBy: length + 1)
            context.fireChannelRead(Self.wrapInboundOut(.oversize))
            return .continue
        }
        guard var line = buffer.readSlice(length: length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 1)
        if line.readableBytesView.last == 0x0D { line.moveWriterIndex(to: line.writerIndex - 1) }
        context.fireChannelRead(Self.wrapInboundOut(.line(line)))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        // A last line without its newline still counts as a message.
        if discarding {
            discarding = false
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            context.fireChannelRead(Self.wrapInboundOut(.oversize))
        } else if buffer.readableBytes > maximumFrameBytes {
            // The one byte of slack kept for a carriage return: with no newline to come, it is over the bound.
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            context.fireChannelRead(Self.wrapInboundOut(.oversize))
        } else if buffer.readableBytes > 0, let line = buffer.readSlice(length: buffer.readableBytes) {
            context.fireChannelRead(Self.wrapInboundOut(.line(line)))
        }
        searchedBytes = 0
        return .needMoreData
    }
}
