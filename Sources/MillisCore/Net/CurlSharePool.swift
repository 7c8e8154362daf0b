import CCurl

/// Connection caches for curl, a few connections each. curl 7.88's `curl_easy_send` and
/// `curl_easy_recv` find their connection by walking the whole connection cache the
/// handle belongs to (`Curl_getconnectinfo`), and without a share that is the multi
/// handle's, holding every connection of the process: each send and receive cost grew
/// with the number of sessions (a quarter of the loop's time at 1000 of them). A handle
/// attached to a share uses the share's cache instead, so a lookup walks at most
/// `capacity` connections. Loop thread only (the shares have no lock callbacks).
final class CurlSharePool {
    /// Small enough that a lookup stays cheap, large enough that a share's own cost
    /// (a hash table and curl's closure handle, about 10 KB) is spread thin.
    static let capacity = 16

    private var shares: [UnsafeMutableRawPointer] = []
    private var users: [Int] = []
    /// Where the search for room starts (every share below it is full).
    private var firstWithRoom = 0

    /// A share with room, its index to give back; nil when curl cannot make one (the
    /// connection then simply uses the multi handle's cache).
    func acquire() -> (share: UnsafeMutableRawPointer, index: Int)? {
        var i = firstWithRoom
        while i < shares.count && users[i] >= Self.capacity { i += 1 }
        if i == shares.count {
            guard let share = ccurl_share_connections() else { return nil }
            shares.append(share)
            users.append(0)
        }
        users[i] += 1
        firstWithRoom = i
        return (shares[i], i)
    }

    /// After `curl_easy_cleanup` of the handle that used it.
    func release(_ index: Int) {
        users[index] -= 1
        firstWithRoom = min(firstWithRoom, index)
    }
}
