namespace DmaCheck.Hardware;

/// <summary>
/// Marks a field that is not part of a state's identity: a cache of something the other fields already determine (a
/// memoised hash, a lazily built string). The state fingerprint (<c>Exploration/StateHasher.cs</c>) is derived from
/// every other instance field of a state's types; it skips these. Nothing else may carry it.
/// </summary>
[AttributeUsage(AttributeTargets.Field, AllowMultiple = false, Inherited = false)]
public sealed class NotStateAttribute : Attribute
{
}
