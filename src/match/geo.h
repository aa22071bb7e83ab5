// Great-circle geometry for site distances.
//
// Distances are haversine distances on a sphere of the mean Earth radius
// (IUGG, 6371.0088 km): within 0.5 % of the ellipsoidal distance everywhere,
// which is far below the precision of a site's geocoded point.
//
// For scanning many sites the matcher compares chord lengths between unit
// vectors (monotone in the great-circle distance, three multiply-adds per
// site) and converts only the winner to kilometres.
//
// Pure functions; thread-safe.
#ifndef TRIALMATCH_MATCH_GEO_H_
#define TRIALMATCH_MATCH_GEO_H_

namespace trialmatch::match {

inline constexpr double kEarthRadiusKm = 6371.0088;

// Haversine distance in km between two points given in degrees.
double HaversineKm(double lat1_deg, double lon1_deg, double lat2_deg,
                   double lon2_deg);

// A point on the unit sphere (float: 12 bytes a site; the resulting error,
// well under a metre, only affects which of two nearly equidistant sites is
// called nearest).
struct UnitVector {
  float x = 0;
  float y = 0;
  float z = 0;
};

UnitVector ToUnitVector(double lat_deg, double lon_deg);

// Squared chord length between two unit vectors, in [0, 4].
inline double ChordSquared(const UnitVector& a, const UnitVector& b) {
  const double dx = static_cast<double>(a.x) - b.x;
  const double dy = static_cast<double>(a.y) - b.y;
  const double dz = static_cast<double>(a.z) - b.z;
  return dx * dx + dy * dy + dz * dz;
}

// Great-circle distance in km for a squared chord length.
double ChordSquaredToKm(double chord_squared);

// The squared chord length of a great-circle distance in km (inverse of
// ChordSquaredToKm); distances beyond half the circumference give 4.
double KmToChordSquared(double km);

}  // namespace trialmatch::match

#endif  // TRIALMATCH_MATCH_GEO_H_
