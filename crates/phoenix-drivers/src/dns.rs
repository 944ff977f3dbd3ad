//! One DNS question over UDP (RFC 1035), built and read with hickory-proto: the records a
//! server answers for a name, type and class, within a bound. dns-01 asks it whether dnsmasq
//! serves a challenge's TXT record; the lab's probes ask it where a name points and whether a
//! DNS server answers at all. It does not recurse, retry or follow CNAMEs: a caller that waits
//! for an answer bounds its own loop.

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// A question for `name` (made absolute), of `kind` in `class`; `None` for a name that is not one.
pub fn question(name: &str, kind: RecordType, class: DNSClass) -> Option<Query> {
    let absolute = if name.ends_with('.') { name.to_string() } else { format!("{name}.") };
    let mut query = Query::query(Name::from_ascii(absolute).ok()?, kind);
    query.set_query_class(class);
    Some(query)
}

/// Asks `server` one question and returns the answer section's records, or `None` when nothing
/// (or nothing that parses as DNS with the question's id) came back within `wait`. An empty list
/// is an answer without records (NXDOMAIN, NODATA, or a stand-in echoing the query, which the
/// lab's UDP probes count as an answer).
pub async fn ask(server: SocketAddr, query: Query, wait: Duration) -> Option<Vec<RData>> {
    let mut message = Message::new();
    let id = random_id();
    message.set_id(id).set_message_type(MessageType::Query).set_op_code(OpCode::Query).set_recursion_desired(true);
    message.add_query(query);
    let packet = message.to_vec().ok()?;
    let bind = if server.is_ipv4() { SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)) } else { "[::]:0".parse().ok()? };
    let socket = tokio::net::UdpSocket::bind(bind).await.ok()?;
    socket.send_to(&packet, server).await.ok()?;
    let mut buffer = vec![0u8; 4096];
    let (length, _) = tokio::time::timeout(wait, socket.recv_from(&mut buffer)).await.ok()?.ok()?;
    let answer = Message::from_vec(&buffer[..length]).ok()?;
    // A reply to another question (or from someone guessing) is no answer.
    if answer.id() != id {
        return None;
    }
    Some(answer.answers().iter().map(|record| record.data().clone()).collect())
}

/// The IPv4 addresses among `records`.
pub fn addresses(records: &[RData]) -> Vec<Ipv4Addr> {
    records.iter().filter_map(|r| if let RData::A(a) = r { Some(a.0) } else { None }).collect()
}

/// The TXT values among `records`, each record's strings joined (RFC 7208 section 3.3 style).
pub fn texts(records: &[RData]) -> Vec<String> {
    let joined = |txt: &hickory_proto::rr::rdata::TXT| txt.txt_data().iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    records.iter().filter_map(|r| if let RData::TXT(txt) = r { Some(joined(txt)) } else { None }).collect()
}

/// A query id nobody can predict (RFC 5452 section 4.3).
fn random_id() -> u16 {
    let mut bytes = [0u8; 2];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    u16::from_be_bytes(bytes)
}
