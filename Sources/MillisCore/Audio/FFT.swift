#if canImport(Glibc)
import Glibc
#endif

/// An in-place iterative radix-2 complex FFT for one power-of-two size.
///
/// The twiddles and the bit-reversal permutation are computed once in `init`, so that
/// `transform` neither allocates nor calls `cos`/`sin`: the analyser runs it for every
/// frame a UI asks for, up to 60 times a second at 32768 points. Each twiddle is
/// computed directly from its angle rather than by repeated rotation, which would
/// accumulate rounding error over 16 384 steps at the largest size.
struct FFT {
    let size: Int
    /// cos(2πk/size) and -sin(2πk/size) for k < size/2: e^(-2πik/size), the forward kernel.
    private let twiddleReal: [Double]
    private let twiddleImag: [Double]
    /// Only the pairs (i, j) with i < j, so the permutation is a list of plain swaps.
    private let swaps: [(Int32, Int32)]

    init(size: Int) {
        precondition(size >= 2 && size & (size - 1) == 0, "FFT size must be a power of two, got \(size)")
        self.size = size
        let half = size / 2
        var re = [Double](repeating: 0, count: half)
        var im = [Double](repeating: 0, count: half)
        for k in 0..<half {
            let angle = 2 * Double.pi * Double(k) / Double(size)
            re[k] = cos(angle)
            im[k] = -sin(angle)
        }
        twiddleReal = re
        twiddleImag = im

        var bits = 0
        while 1 << bits < size { bits += 1 }
        var pairs: [(Int32, Int32)] = []
        pairs.reserveCapacity(size / 2)
        for i in 0..<size {
            var j = 0
            var v = i
            for _ in 0..<bits {
                j = (j << 1) | (v & 1)
                v >>= 1
            }
            if i < j { pairs.append((Int32(i), Int32(j))) }
        }
        swaps = pairs
    }

    /// Replaces (real, imag) by its forward DFT, X[k] = Σ x[n]·e^(-2πikn/N), unscaled.
    /// Both buffers must hold exactly `size` values.
    func transform(real: UnsafeMutableBufferPointer<Double>, imag: UnsafeMutableBufferPointer<Double>) {
        precondition(real.count == size && imag.count == size, "FFT buffers must hold \(size) values")
        guard let re = real.baseAddress, let im = imag.baseAddress else { return }

        swaps.withUnsafeBufferPointer { swaps in
            for (a, b) in swaps {
                let i = Int(a), j = Int(b)
                let r = re[i]; re[i] = re[j]; re[j] = r
                let m = im[i]; im[i] = im[j]; im[j] = m
            }
        }

        twiddleReal.withUnsafeBufferPointer { twr in
            twiddleImag.withUnsafeBufferPointer { twi in
                guard let wr = twr.baseAddress, let wi = twi.baseAddress else { return }
                var span = 1
                while span < size {
                    // A butterfly group of 2·span points uses every (size / 2·span)-th twiddle.
                    let stride = size / (2 * span)
                    var group = 0
                    while group < size {
                        var t = 0
                        for a in group..<(group + span) {
                            let b = a + span
                            let cr = wr[t], ci = wi[t]
                            let xr = re[b] * cr - im[b] * ci
                            let xi = re[b] * ci + im[b] * cr
                            re[b] = re[a] - xr
                            im[b] = im[a] - xi
                            re[a] += xr
                            im[a] += xi
                            t += stride
                        }
                        group += 2 * span
                    }
                    span *= 2
                }
            }
        }
    }
}
